/* wait.c: blocking waits that wake on completion and on Ctrl-C.
 *
 * A waiting thread links a lat_waiter into pool->waiters and sleeps on the
 * waiter's own lock with the GIL released.  Whoever changes the state the
 * waiter is interested in calls lat_wake(), which releases the lock.  The
 * sleep is PyThread_acquire_lock_timed(..., intr_flag=1), which returns when
 * a signal handler runs, so Python's SIGINT handler gets its chance at once:
 * no polling, no timed naps.
 */
#include "lateral.h"
#include <time.h>

const char LAT_WAIT_IDLE[] = "idle";
const char LAT_WAIT_ROOM[] = "room";
const char LAT_WAIT_EXIT[] = "exit";
const char LAT_WAIT_HELP[] = "help";
const char LAT_WAIT_READY[] = "ready";

/* Sets `exc_type` with "<what> did not finish within <timeout> seconds
 * (<left> left)"; PyErr_Format has no %g, so the number is formatted here. */
void lat_timeout_error(PyObject *exc_type, const char *what, double timeout,
                       Py_ssize_t left)
{
    char *secs = PyOS_double_to_string(timeout, 'g', 6, 0, NULL);
    if (secs == NULL)
        return;
    if (left >= 0)
        PyErr_Format(exc_type, "%s did not finish within %s seconds (%zd left)",
                     what, secs, left);
    else
        PyErr_Format(exc_type, "%s did not finish within %s seconds", what, secs);
    PyMem_Free(secs);
}

/* The one rule for a timeout: None (-1 here), or a non-negative int or
 * float of seconds; a bool is refused.  Returns 0, or -1 with a TypeError or
 * ValueError naming the value. */
/* An int timeout beyond a double's range: forever when positive (like
 * float('inf')), and still refused when negative. */
static int huge_int_seconds(PyObject *obj, double *t)
{
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL)
        return -1;
    int negative = PyObject_RichCompareBool(obj, zero, Py_LT);
    Py_DECREF(zero);
    if (negative < 0)
        return -1;
    *t = negative ? -Py_HUGE_VAL : Py_HUGE_VAL;
    return 0;
}

int lat_timeout_seconds(PyObject *obj, double *out)
{
    *out = -1;
    if (obj == Py_None)
        return 0;
    if (PyBool_Check(obj) || (!PyFloat_Check(obj) && !PyLong_Check(obj))) {
        PyErr_Format(PyExc_TypeError,
                     "timeout must be a number of seconds or None, got %R", obj);
        return -1;
    }
    double t = PyFloat_AsDouble(obj);
    if (t == -1 && PyErr_Occurred()) {
        if (!PyLong_Check(obj) || !PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
        if (huge_int_seconds(obj, &t) < 0)
            return -1;
    }
    if (!(t >= 0)) {
        PyErr_Format(PyExc_ValueError,
                     "timeout must be a non-negative number of seconds, got %R", obj);
        return -1;
    }
    *out = t;
    return 0;
}

/* Parses the optional `timeout` argument of a wait method (fmt is its
 * PyArg format, e.g. "|O:join").  Returns 0, or -1 with an exception set. */
int lat_parse_timeout(PyObject *args, PyObject *kw, const char *fmt, double *out)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *tobj = Py_None;
    *out = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &tobj))
        return -1;
    return lat_timeout_seconds(tobj, out);
}

double lat_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void waiter_link(lat_pool *pool, lat_waiter *w)
{
    w->prev = NULL;
    w->next = pool->waiters;
    if (pool->waiters)
        pool->waiters->prev = w;
    pool->waiters = w;
    w->linked = 1;
}

static void waiter_unlink(lat_pool *pool, lat_waiter *w)
{
    if (!w->linked)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        pool->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->linked = 0;
}

/* Wakes the waiters on `target`, or all of them when target is NULL.
 * Contract: mu held; GIL not needed. */
void lat_wake(lat_pool *pool, const void *target)
{
    lat_waiter *w = pool->waiters;
    while (w) {
        lat_waiter *next = w->next;
        if (target == NULL || w->target == target) {
            waiter_unlink(pool, w);
            PyThread_release_lock(w->lock);
        }
        w = next;
    }
}

/* Sleeps once on a linked waiter.  Returns the PyLockStatus. */
static PyLockStatus waiter_sleep(lat_waiter *w, double deadline)
{
    PY_TIMEOUT_T us = -1;
    if (deadline >= 0) {
        double left = deadline - lat_now();
        if (left <= 0)
            return PY_LOCK_FAILURE;
        double max_s = (double)PY_TIMEOUT_MAX / 1e6;
        us = left > max_s ? PY_TIMEOUT_MAX : (PY_TIMEOUT_T)(left * 1e6);
    }
    PyLockStatus st;
    Py_BEGIN_ALLOW_THREADS
    st = PyThread_acquire_lock_timed(w->lock, us, 1);
    Py_END_ALLOW_THREADS
    return st;
}

/* Blocks until done(pool, arg) is true, the timeout (seconds, < 0: none)
 * runs out, or a signal handler raises.
 * Returns 1 when done, 0 on timeout, -1 with an exception set.
 * Contract: GIL held, mu not held; done() is called with mu held. */
int lat_wait(lat_pool *pool, const void *target, lat_pred done, void *arg,
             double timeout)
{
    double deadline = timeout >= 0 ? lat_now() + timeout : -1;
    lat_waiter w = {0};
    w.target = target;
    w.lock = PyThread_allocate_lock();
    if (w.lock == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyThread_acquire_lock(w.lock, WAIT_LOCK);
    int result;
    for (;;) {
        lat_lock(&pool->mu);
        if (done(pool, arg)) {
            lat_unlock(&pool->mu);
            result = 1;
            break;
        }
        waiter_link(pool, &w);
        lat_unlock(&pool->mu);

        PyLockStatus st = waiter_sleep(&w, deadline);

        lat_lock(&pool->mu);
        waiter_unlink(pool, &w);
        lat_unlock(&pool->mu);
        if (st == PY_LOCK_INTR && PyErr_CheckSignals() < 0) {
            result = -1;
            break;
        }
        if (st == PY_LOCK_FAILURE) {
            lat_lock(&pool->mu);
            result = done(pool, arg) ? 1 : 0;
            lat_unlock(&pool->mu);
            break;
        }
        /* Woken, or a signal whose handler did not raise: re-arm the lock
         * (a wake may have released it already) and look again. */
        PyThread_acquire_lock(w.lock, NOWAIT_LOCK);
    }
    /* A wake may have raced with the timeout or the signal: make the lock
     * held whatever happened, then free it unlocked. */
    PyThread_acquire_lock(w.lock, NOWAIT_LOCK);
    PyThread_release_lock(w.lock);
    PyThread_free_lock(w.lock);
    return result;
}
