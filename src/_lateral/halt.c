/* halt.c: stopping running tasks at safe points.
 *
 * When a pool halts (its first task error, or close(cancel=True)), each other
 * worker still running one of its items is asked to stop.  It is stopped with
 * TaskCancelled only at a safe point, where raising cannot leave a lock held
 * by code that is not the task's own:
 *   - its next call into lateral (a task call, a task group wait,
 *     checkpoint(), a cache_result function): lat_halt_check();
 *   - the next line of user code (not the standard library, installed
 *     packages, frozen modules or lateral itself), watched only while the
 *     halt is pending and only in the halted workers: a trace function set on
 *     the worker's own thread state (3.10, 3.11), or sys.monitoring LINE
 *     events on the user code objects of its stack plus PY_START/PY_RESUME
 *     (3.12 and later).  The line watch raises once; later library calls
 *     keep raising.
 * An asynchronous exception, raised at an arbitrary bytecode instruction, can
 * land between a lock's acquire() and its try: (importlib's module
 * locks, logging's handler locks) and hang the program: never done here.
 *
 * Which files are library code, and the sys.monitoring bookkeeping, live in
 * the Python module _lateral_halt; the callbacks that run per line are here.
 * Contract: every function here runs with the GIL held and never with mu.
 */
#include "lateral.h"
#include <sched.h>

enum { HALT_NONE = 0, HALT_PENDING = 1, HALT_RAISED = 2 };

#if PY_VERSION_HEX >= 0x030C0000
#define LAT_USE_MONITORING 1
#else
#define LAT_USE_MONITORING 0
#endif

static PyObject *helper_module;   /* _lateral_halt, imported at the first halt */
static Py_ssize_t halts_pending;  /* workers with halt != HALT_NONE */

/* The helper module, imported once.  Returns a borrowed reference or NULL
 * with an exception set. */
static PyObject *helper(void)
{
    if (helper_module == NULL)
        helper_module = PyImport_ImportModule("_lateral_halt");
    return helper_module;
}

/* 1 if `filename` is library code (never a safe point), 0 if it is the
 * user's, -1 with an exception set.  The helper caches the answers. */
static int is_library_file(PyObject *filename)
{
    PyObject *mod = helper();
    PyObject *r = mod ? PyObject_CallMethod(mod, "is_library_file", "O", filename) : NULL;
    if (r == NULL)
        return -1;
    int library = PyObject_IsTrue(r);
    Py_DECREF(r);
    return library;
}

static const char *halt_reason(lat_pool *pool)
{
    return pool->first_error != NULL
        ? "the task pool was halted by an error in another task"
        : "the task pool is being cancelled";
}

#if !LAT_USE_MONITORING
/* ---- 3.10 and 3.11: a trace function on the halted worker only ---------- */

static void untrace(lat_worker *w)
{
    if (!w->traced)
        return;
    w->traced = 0;
    PyObject *prev_obj = w->prev_traceobj;  /* the thread state takes a new ref */
    w->prev_traceobj = NULL;
    if (_PyEval_SetTrace(w->tstate, w->prev_trace, prev_obj) < 0)
        PyErr_WriteUnraisable(NULL);
    Py_XDECREF(prev_obj);
    w->prev_trace = NULL;
}

static int halt_trace(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg);

/* Contract: GIL held; w is another thread's worker. */
static int watch_worker(lat_worker *w)
{
    if (w->traced || w->tstate == NULL)
        return 0;
    w->prev_trace = w->tstate->c_tracefunc;
    w->prev_traceobj = Py_XNewRef(w->tstate->c_traceobj);
    w->traced = 1;
    /* Audit hooks run inside and may let the worker run: arming keeps it
     * from ending its item (and freeing its thread state) meanwhile. */
    w->arming = 1;
    int r = _PyEval_SetTrace(w->tstate, halt_trace, NULL);
    w->arming = 0;
    return r;
}

static void unwatch_all(void) {}
#else
/* ---- 3.12 and later: sys.monitoring on user code ------------------------ */

static int monitoring_armed;      /* _lateral_halt.arm() was called */
static Py_ssize_t arm_calls;      /* arm() calls under way (they let the GIL go) */

static void unwatch_all(void);

/* Contract: GIL held; w is another thread's worker. */
static int watch_worker(lat_worker *w)
{
    PyObject *mod = helper();
    if (mod == NULL || w->tstate == NULL)
        return mod == NULL ? -1 : 0;
    PyFrameObject *frame = PyThreadState_GetFrame(w->tstate);
    /* From here on w may end its item while arm() runs Python code. */
    monitoring_armed = 1;
    arm_calls++;
    PyObject *r = PyObject_CallMethod(mod, "arm", "O", frame ? (PyObject *)frame : Py_None);
    arm_calls--;
    Py_XDECREF(frame);
    if (halts_pending == 0)
        unwatch_all();  /* every halt ended meanwhile */
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Contract: GIL held; does nothing while an arm() call is under way. */
static void unwatch_all(void)
{
    if (!monitoring_armed || arm_calls > 0)
        return;
    monitoring_armed = 0;
    PyObject *r = PyObject_CallMethod(helper_module, "disarm", NULL);
    if (r == NULL)
        PyErr_WriteUnraisable(NULL);
    Py_XDECREF(r);
}
#endif

/* Raises TaskCancelled in this worker at a safe point of code `code`, once,
 * if its halt is pending.  Returns -1 with the exception set, else 0.
 * Contract: GIL held, in the worker's own thread. */
static int halt_here(PyObject *filename)
{
    lat_worker *w = lat_tls_worker;
    if (w == NULL || w->halt != HALT_PENDING)
        return 0;
    int library = is_library_file(filename);
    if (library != 0)
        return library;  /* -1: the classification failed, raise that */
    w->halt = HALT_RAISED;
#if !LAT_USE_MONITORING
    untrace(w);
#endif
    PyErr_SetString(LatErr_Cancelled, w->halt_reason);
    return -1;
}

#if !LAT_USE_MONITORING
/* The trace function of a halted worker: a Python frame starting or a new
 * line in user code is a safe point.  Other events, and every event once the
 * halt has ended, go to the trace function it replaced (if any). */
static int halt_trace(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    (void)obj;
    lat_worker *w = lat_tls_worker;
    if (w == NULL)
        return 0;
    if ((what == PyTrace_LINE || what == PyTrace_CALL) && w->halt == HALT_PENDING) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        int r = halt_here(code->co_filename);
        Py_DECREF(code);
        if (r < 0)
            return -1;
    }
    Py_tracefunc prev = w->prev_trace;
    PyObject *prev_obj = Py_XNewRef(w->prev_traceobj);
    if (w->halt != HALT_PENDING)
        untrace(w);  /* raised already, or the halt ended before this thread ran */
    int r = prev ? prev(prev_obj, frame, what, arg) : 0;
    Py_XDECREF(prev_obj);
    return r;
}
#endif

/* sys.monitoring callback for LINE (code, line) and PY_START / PY_RESUME
 * (code, offset): raises TaskCancelled in a halted worker's user code. */
PyObject *lat_halt_event(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    lat_worker *w = lat_tls_worker;
    if (w == NULL || w->halt != HALT_PENDING || nargs < 1 || !PyCode_Check(args[0]))
        Py_RETURN_NONE;
    if (halt_here(((PyCodeObject *)args[0])->co_filename) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Imports the helper module, so that neither a halt request (between
 * reading a worker's state and using its thread state, the GIL must not be
 * let go) nor a halted worker's line watch has to.  Contract: GIL held, mu
 * not held.  Returns 0, or -1 with an exception set. */
int lat_halt_prepare(void)
{
    return helper() == NULL ? -1 : 0;
}

/* Asks worker `w` (busy with an item of its pool, not this thread) to stop
 * at its next safe point.  Contract: GIL held, mu not held, and the GIL not
 * let go since w was seen busy (its thread state is alive). */
void lat_halt_request(lat_worker *w)
{
    if (w->halt != HALT_NONE)
        return;
    w->halt = HALT_PENDING;
    w->halt_reason = halt_reason(w->pool);
    halts_pending++;
    /* A failed watch still leaves the library-call safe points. */
    if (watch_worker(w) < 0)
        PyErr_WriteUnraisable((PyObject *)w->pool);
}

/* Ends the halt of worker `w` once its outermost item has ended.
 * Contract: GIL held, in w's own thread. */
void lat_halt_finish(lat_worker *w)
{
    if (w->halt == HALT_NONE)
        return;
    while (w->arming) {  /* only while another thread's audit hook runs */
        Py_BEGIN_ALLOW_THREADS
        sched_yield();
        Py_END_ALLOW_THREADS
    }
    w->halt = HALT_NONE;
#if !LAT_USE_MONITORING
    untrace(w);
#endif
    if (--halts_pending == 0)
        unwatch_all();
}

/* The cooperative safe point: in a worker whose halt is pending or whose
 * pool is halting, raise TaskCancelled.  Returns -1 with it set, else 0. */
int lat_halt_check(void)
{
    lat_worker *w = lat_tls_worker;
    if (w == NULL)
        return 0;
    lat_pool *pool = w->pool;
    if (w->halt == HALT_NONE && pool->first_error == NULL && !pool->cancelling)
        return 0;
    const char *reason = w->halt == HALT_NONE ? halt_reason(pool) : w->halt_reason;
    if (w->halt == HALT_PENDING)
        w->halt = HALT_RAISED;
    PyErr_SetString(LatErr_Cancelled, reason);
    return -1;
}
