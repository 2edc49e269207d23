/* pool.c: the worker pool: threads, submission, errors, join, close, fork.
 *
 * Workers are pthreads with a Python thread state of their own
 * (PyGILState_Ensure, so C code in a task that calls PyGILState_Ensure finds
 * it).  A worker keeps the GIL while it drains ready items; the eval loop's
 * switch interval still hands the GIL over as usual.  It releases the GIL
 * only to sleep on work_cv when the queue is empty.
 *
 * Locking contract: see lateral.h.  Functions say "mu held" when they must be
 * called with the pool mutex held; otherwise they take it themselves.
 */
#include "lateral.h"
#include <signal.h>
#include <string.h>
#include <unistd.h>

lat_pool *lat_current_pool = NULL;
LAT_TLS lat_worker *lat_tls_worker = NULL;
LAT_TLS PyObject *lat_tls_group = NULL;

static lat_pool *live_pools = NULL; /* GIL */

static void note_pop(lat_pool *pool);

/* block_when_saturated's "fully saturated", as in the published pylateral:
 * every worker is busy, i.e. the tasks queued or running reach max_workers.
 * Contract: mu held. */
static int is_saturated(lat_pool *pool)
{
    return pool->pending >= pool->max_workers;
}

/* ---- items ------------------------------------------------------------ */

/* Contract: GIL held, mu not held (decrefs run Python code). */
static LAT_HOT void lat_item_clear(lat_item *it)
{
    /* A ticket is cleared after it was accounted, so the batch it ended is
     * done here: its done callbacks run now, outside the mutex. */
    if (it->kind == ITEM_TICKET && it->owner != NULL)
        lat_batch_call_callbacks((lat_batch *)it->owner);
    Py_CLEAR(it->fn);
    Py_CLEAR(it->args);
    Py_CLEAR(it->kwargs);
    Py_CLEAR(it->owner);
    Py_CLEAR(it->site_code);
}

/* Refuses new work and wakes every idle worker to exit once the queue is
 * empty.  Waiters are close()'s to wake.  Contract: mu held. */
static void close_locked(lat_pool *pool)
{
    pool->closing = 1;
    lat_cond_broadcast(&pool->work_cv);
}

/* Bookkeeping for an item that ran or was dropped.  Contract: mu held. */
static LAT_HOT void lat_account_done(lat_pool *pool, const lat_item *it)
{
    if (it->kind == ITEM_TICKET) {
        lat_batch_ticket_done((lat_batch *)it->owner);
        return;
    }
    pool->finished++;
    if (--pool->pending == 0) {
        lat_wake(pool, LAT_WAIT_IDLE);
        if (pool->close_when_idle)
            close_locked(pool);
    }
    note_pop(pool);
    if (it->owner) {
        lat_group *g = (lat_group *)it->owner;
        if (--g->pending == 0) {
            lat_wake(pool, g);
            lat_wake(pool, LAT_WAIT_HELP);
        }
    }
}

/* The reference a pool holds to itself while tasks are pending is dropped
 * once none is: a pool nobody else references then closes its threads
 * (workers hold no reference; pool_dealloc stops and joins them).
 * Contract of take_work_ref_if_idle: mu held; returns 1 if the caller must
 * drop that reference (drop_pool_ref) once it has let go of mu. */
static int take_work_ref_if_idle(lat_pool *pool)
{
    if (!pool->work_ref || pool->pending != 0)
        return 0;
    pool->work_ref = 0;
    return 1;
}

/* Drops one reference to the pool; returns 1 if that freed it, which a
 * worker must then not touch again.  Contract: GIL held, mu not held. */
static int drop_pool_ref(lat_pool *pool)
{
    int last = Py_REFCNT(pool) == 1;
    Py_DECREF(pool);
    return last;
}

/* Drops the work reference if nothing is pending; returns 1 if that freed
 * the pool.  Contract: GIL held, mu not held. */
static int release_work_ref(lat_pool *pool)
{
    lat_lock(&pool->mu);
    int drop = take_work_ref_if_idle(pool);
    lat_unlock(&pool->mu);
    return drop ? drop_pool_ref(pool) : 0;
}

/* Clears an item already accounted for, and with `drop` the pool's
 * reference to itself (take_work_ref_if_idle).  Clearing may drop the last
 * reference to the pool but its own (a ticket's batch holds one), so one is
 * kept across it.  Returns 1 if the pool was freed, which the calling
 * worker must then not touch again.  Contract: GIL held, mu not held. */
static LAT_HOT int clear_finished(lat_pool *pool, lat_item *it, int drop)
{
    Py_INCREF(pool);
    lat_item_clear(it);
    if (drop)
        Py_DECREF(pool);  /* its reference to itself; ours keeps it */
    return drop_pool_ref(pool);
}

/* Accounts for an item that ran or was dropped, and clears it; returns as
 * clear_finished.  Contract: GIL held, mu not held. */
static int finish_item(lat_pool *pool, lat_item *it)
{
    lat_lock(&pool->mu);
    lat_account_done(pool, it);
    int drop = take_work_ref_if_idle(pool);
    lat_unlock(&pool->mu);
    return clear_finished(pool, it, drop);
}

/* lat_queue_each's callback for drop_queue.  Contract: mu held. */
static void account_dropped(const lat_item *it, void *pool)
{
    lat_account_done(pool, it);
}

/* Empties the queue into `dropped` and accounts for every item.
 * Contract: mu held.  The caller clears the items with the GIL. */
static void drop_queue(lat_pool *pool, lat_queue *dropped)
{
    lat_queue_take_all(&pool->q, dropped);
    pool->generation++;
    lat_queue_each(dropped, account_dropped, pool);
}

/* Contract: GIL held, mu not held. */
static void clear_dropped(lat_queue *dropped)
{
    lat_item it;
    while (lat_queue_pop(dropped, &it))
        lat_item_clear(&it);
    lat_queue_free(dropped);
}

/* Drops queued items and asks every other worker running one to stop at
 * its next safe point (halt.c).  Contract: GIL held, mu not held. */
static void halt_work(lat_pool *pool)
{
    lat_queue dropped;
    lat_lock(&pool->mu);
    drop_queue(pool, &dropped);
    lat_wake(pool, NULL);
    lat_unlock(&pool->mu);
    if (lat_halt_prepare() < 0)
        PyErr_WriteUnraisable((PyObject *)pool);  /* library calls still stop them */
    /* From here to each request the GIL is kept: a worker seen busy is alive. */
    for (Py_ssize_t i = 0; i < pool->nthreads; i++) {
        lat_worker *w = &pool->workers[i];
        if (w->busy && w != lat_tls_worker)
            lat_halt_request(w);
    }
    clear_dropped(&dropped);
}

/* ---- errors ----------------------------------------------------------- */

/* Takes the current exception as one normalized object whose
 * __traceback__ is the worker's traceback.  Contract: GIL held. */
static PyObject *fetch_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

/* Records the exception set by task `fn`, queued at `site`, with a note
 * naming that call.  The first one halts the pool, unless the pool does
 * not halt on errors and it is an Exception (not Ctrl-C, SystemExit...).
 * Contract: GIL held, an exception set. */
void lat_pool_record_error(lat_pool *pool, PyObject *fn, lat_site site)
{
    PyObject *exc = fetch_exception();
    if (exc == NULL)
        return;
    if (PyObject_TypeCheck(exc, (PyTypeObject *)LatErr_Cancelled)) {
        Py_DECREF(exc);
        return;
    }
    lat_note_call_site(exc, fn, site);
    if (PyList_Append(pool->errors, exc) < 0)
        PyErr_WriteUnraisable((PyObject *)pool);
    if (!pool->halt_on_error && PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_Exception)) {
        Py_DECREF(exc);
        return;
    }
    if (pool->first_error == NULL) {
        pool->first_error = exc; /* takes our reference */
        halt_work(pool);
    } else {
        Py_DECREF(exc);
    }
}

/* Raises the undelivered first error in this thread and re-arms the pool.
 * In one of the pool's own workers it raises TaskCancelled instead: the
 * error belongs to the threads outside, and the task should just end.
 * Returns -1 with the exception set.  Contract: GIL held. */
int lat_pool_deliver_error(lat_pool *pool)
{
    lat_worker *w = lat_tls_worker;
    if (w != NULL && w->pool == pool) {
        PyErr_SetString(LatErr_Cancelled,
                        "the task pool was halted by an error in another task");
        return -1;
    }
    PyObject *exc = pool->first_error;
    pool->first_error = NULL;
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore((PyObject *)Py_NewRef(Py_TYPE(exc)), exc, tb);
    return -1;
}

/* ---- errors swallowed by finalizers ------------------------------------ */

/* A task call that raises the first error may be made by a finalizer (a
 * __del__, a weakref callback), which only prints what it raises through
 * sys.unraisablehook.  While such an error is out, lateral's hook wraps the
 * current one: an error of ours that turns up there is put back as the
 * pool's first error, so the next task call, join or exit raises it to the
 * program.  An error the program caught never reaches the hook. */
static PyObject *wrapped_hook;  /* the hook ours wraps while installed */
static PyObject *our_hook;      /* _lateral._unraisable_hook */

PyObject *lat_unraisable_hook(PyObject *mod, PyObject *unraisable)
{
    (void)mod;
    PyObject *exc = PyObject_GetAttrString(unraisable, "exc_value");
    if (exc == NULL)
        return NULL;
    for (lat_pool *p = live_pools; p; p = p->live_next) {
        if (p->raised_at_call == exc && p->first_error == NULL) {
            p->first_error = Py_NewRef(exc);
            Py_CLEAR(p->raised_at_call);
        }
    }
    Py_DECREF(exc);
    PyObject *next = wrapped_hook ? wrapped_hook : PySys_GetObject("__unraisablehook__");
    if (next == NULL || next == our_hook)
        Py_RETURN_NONE;
    return PyObject_CallOneArg(next, unraisable);
}

/* Contract: GIL held.  Returns 0, or -1 with an exception set. */
static int install_unraisable_hook(void)
{
    if (our_hook == NULL) {
        PyObject *mod = PyImport_ImportModule("_lateral");
        our_hook = mod ? PyObject_GetAttrString(mod, "_unraisable_hook") : NULL;
        Py_XDECREF(mod);
        if (our_hook == NULL)
            return -1;
    }
    PyObject *current = PySys_GetObject("unraisablehook");  /* borrowed */
    if (current == our_hook)
        return 0;
    Py_XSETREF(wrapped_hook, Py_XNewRef(current));
    return PySys_SetObject("unraisablehook", our_hook);
}

/* Gives the wrapped hook back once no pool has an error out.  Contract: GIL
 * held; keeps any exception already set. */
static void uninstall_unraisable_hook(void)
{
    for (lat_pool *p = live_pools; p; p = p->live_next)
        if (p->raised_at_call != NULL)
            return;
    if (our_hook == NULL || PySys_GetObject("unraisablehook") != our_hook)
        return;  /* never installed, or replaced since: leave the new one */
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (PySys_SetObject("unraisablehook", wrapped_hook) < 0)
        PyErr_WriteUnraisable(NULL);
    Py_CLEAR(wrapped_hook);
    PyErr_Restore(type, value, tb);
}

/* Raises the first error at a task call (see above).  Returns -1 with the
 * exception set.  Contract: GIL held. */
static int raise_at_call(lat_pool *pool)
{
    PyObject *exc = pool->first_error;
    lat_pool_deliver_error(pool);
    if (exc == NULL || pool->first_error != NULL)  /* a worker: TaskCancelled */
        return -1;
    Py_XSETREF(pool->raised_at_call, Py_NewRef(exc));
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (install_unraisable_hook() < 0)
        PyErr_WriteUnraisable((PyObject *)pool);
    PyErr_Restore(type, value, tb);
    return -1;
}

/* ---- threads ---------------------------------------------------------- */

/* Names the thread for the OS and for the threading module. */
static void worker_set_names(lat_pool *pool, lat_worker *w)
{
    PyObject *name = PyUnicode_FromFormat("%U-%d", pool->name_prefix, w->index);
    if (name == NULL) {
        PyErr_WriteUnraisable((PyObject *)pool);
        return;
    }
    const char *s = PyUnicode_AsUTF8(name);
    if (s != NULL) {
        char os_name[16];
        strncpy(os_name, s, sizeof os_name - 1);
        os_name[sizeof os_name - 1] = '\0';
        pthread_setname_np(pthread_self(), os_name);
    }
    PyObject *threading = PyImport_ImportModule("threading");
    PyObject *thread = threading ?
        PyObject_CallMethod(threading, "current_thread", NULL) : NULL;
    if (thread == NULL || PyObject_SetAttrString(thread, "name", name) < 0)
        PyErr_WriteUnraisable((PyObject *)pool);
    Py_XDECREF(thread);
    Py_XDECREF(threading);
    Py_DECREF(name);
}

/* Removes the threading module's record of this thread (a _DummyThread
 * made by current_thread()), so threading.enumerate() forgets it. */
static void worker_forget_thread(void)
{
    PyObject *threading = PyImport_ImportModule("threading");
    PyObject *active = threading ?
        PyObject_GetAttrString(threading, "_active") : NULL;
    PyObject *key = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    if (active && key && PyDict_Check(active)) {
        if (PyDict_DelItem(active, key) < 0)
            PyErr_Clear();
    }
    PyErr_Clear();
    Py_XDECREF(key);
    Py_XDECREF(active);
    Py_XDECREF(threading);
}

/* Wakes the saturation waiters once a worker may be free: called where an
 * item leaves the queue and where a task ends.  Contract: mu held. */
static void note_pop(lat_pool *pool)
{
    if (pool->room_waiters && !is_saturated(pool))
        lat_wake(pool, LAT_WAIT_ROOM);
}

/* Takes the oldest item into *it; returns 1, or 0 when the queue is empty.
 * Contract: mu held. */
static LAT_HOT int pop_item(lat_pool *pool, lat_item *it)
{
    int got = lat_queue_pop(&pool->q, it);
    if (got)
        note_pop(pool);
    return got;
}

/* Sleeps until an item or closing; returns as worker_take does.
 * Contract: GIL held on entry, released while sleeping, held on return. */
static int worker_sleep_take(lat_pool *pool, lat_item *it)
{
    PyThreadState *ts = PyEval_SaveThread();
    pthread_sigmask(SIG_SETMASK, &lat_idle_sigmask, NULL);
    lat_lock(&pool->mu);
    pool->idle++;
    while (pool->q.len == 0 && !pool->closing) {
        lat_cond_wait(&pool->work_cv, &pool->mu);
        /* This wake used up a signal even when another thread took the item
         * first: a count left behind would keep idle workers asleep while
         * items wait in the queue. */
        if (pool->wakes_pending > 0)
            pool->wakes_pending--;
    }
    pool->idle--;
    int got = pop_item(pool, it);
    uint64_t gen = pool->generation;
    lat_unlock(&pool->mu);
    pthread_sigmask(SIG_SETMASK, &lat_program_sigmask, NULL);
    PyEval_RestoreThread(ts);
    if (got && gen != pool->generation)  /* dropped while this thread waited for the GIL */
        return finish_item(pool, it) ? -2 : -1;
    return got;
}

/* Takes the next item; returns 1 with *it filled, 0 when the worker should
 * exit, -1 when the item it took was dropped meanwhile (and finished), -2
 * when finishing it freed the pool (see finish_item).
 * Contract: GIL held on entry and on return. */
static int worker_take(lat_pool *pool, lat_item *it)
{
    lat_lock(&pool->mu);
    int got = pop_item(pool, it);
    int closing = pool->closing;
    lat_unlock(&pool->mu);
    if (got)
        return 1;
    if (closing)
        return 0;
    return worker_sleep_take(pool, it);
}

/* Finishes the item in *it and takes the next one into *it, both in one
 * hold of mu: a stream of tiny tasks pays for one lock per task on this
 * side, not two.  Returns as worker_take.
 * Contract: GIL held on entry and on return. */
static int worker_finish_take(lat_pool *pool, lat_item *it)
{
    lat_item done = *it;
    lat_lock(&pool->mu);
    lat_account_done(pool, &done);
    int got = pop_item(pool, it);
    int drop = take_work_ref_if_idle(pool);
    int closing = pool->closing;
    uint64_t gen = pool->generation;
    lat_unlock(&pool->mu);
    /* A popped item keeps the pool alive (a task by pending and the work
     * reference, a ticket by its batch): then clearing `done` cannot free
     * it, and needs no reference of its own. */
    if (got && !drop)
        lat_item_clear(&done);
    else if (clear_finished(pool, &done, drop))
        return -2;
    if (got && gen != pool->generation)  /* dropped while `done` was cleared */
        return finish_item(pool, it) ? -2 : -1;
    if (got)
        return 1;
    if (closing)
        return 0;
    return worker_sleep_take(pool, it);
}

/* Runs a queued task in a worker.  Contract: GIL held, mu not held. */
static LAT_HOT void run_task(lat_pool *pool, lat_item *it)
{
    PyObject *saved = lat_tls_group;
    lat_tls_group = it->owner;
    PyObject *args = it->args;
    PyObject *res = lat_call_vec(it->fn, args ? &PyTuple_GET_ITEM(args, 0) : NULL,
                                 args ? PyTuple_GET_SIZE(args) : 0, it->kwargs, NULL);
    if (lat_finish_call(pool, it->owner, it->fn, it->flags & TASK_HAS_RETURN, res) < 0)
        lat_pool_record_error(pool, it->fn, (lat_site){it->site_code, it->site_offset});
    lat_tls_group = saved;
}

/* Runs one item in this worker, nested runs included; the caller finishes
 * it.  Contract: GIL held, mu not held. */
static LAT_HOT void worker_run(lat_pool *pool, lat_worker *w, lat_item *it)
{
    int was_busy = w->busy;
    w->busy = 1;
    if (it->kind == ITEM_TASK)
        run_task(pool, it);
    else
        lat_batch_run_ticket((lat_batch *)it->owner);
    w->busy = was_busy;
    if (!was_busy)
        lat_halt_finish(w);  /* the halt aimed at this item */
}

/* Runs one queued item in a worker that is waiting for others; returns 1
 * if it ran one.  Contract: GIL held, mu not held. */
int lat_pool_help_one(lat_pool *pool, lat_worker *w)
{
    lat_item it;
    lat_lock(&pool->mu);
    int got = pop_item(pool, &it);
    lat_unlock(&pool->mu);
    /* The item this worker is inside keeps the pool alive (a task by
     * pending, a batch ticket by its batch): finishing this one never
     * frees it. */
    if (got) {
        worker_run(pool, w, &it);
        finish_item(pool, &it);
    }
    return got;
}

static void *worker_main(void *arg)
{
    lat_worker *w = arg;
    lat_pool *pool = w->pool;
    PyGILState_STATE gs = PyGILState_Ensure();
    w->ident = PyThread_get_thread_ident();
    w->tstate = PyThreadState_Get();
    /* Tasks run with the program's signal mask, so that the processes they
     * start (fork, vfork, posix_spawn) do too; only an idle worker blocks
     * signals, leaving them to the main thread. */
    pthread_sigmask(SIG_SETMASK, &lat_program_sigmask, NULL);
    lat_tls_worker = w;
    worker_set_names(pool, w);
    lat_lock(&pool->mu);
    pool->ready++;
    lat_wake(pool, LAT_WAIT_READY);
    lat_unlock(&pool->mu);
    lat_item it;
    int got = worker_take(pool, &it);
    /* Finishing an item may free the pool (its dealloc detaches this
     * thread): then (-2) neither pool nor w is touched again. */
    while (got != 0 && got != -2) {
        if (got > 0) {
            worker_run(pool, w, &it);
            got = worker_finish_take(pool, &it);
        } else {
            got = worker_take(pool, &it);
        }
    }
    int freed = got == -2;
    worker_forget_thread();
    lat_tls_worker = NULL;
    lat_tls_group = NULL;
    if (!freed) {
        lat_lock(&pool->mu);
        if (--pool->alive == 0)  /* what close() and finish() wait for */
            lat_wake(pool, LAT_WAIT_EXIT);
        lat_unlock(&pool->mu);
    }
    PyGILState_Release(gs);
    return NULL;
}

/* Starts the thread of slot `slot`; signals stay with the main thread.
 * Returns 0, or -1 (no Python error set).  Contract: GIL held. */
static int spawn_worker(lat_pool *pool, Py_ssize_t slot)
{
    lat_worker *w = &pool->workers[slot];
    memset(w, 0, sizeof *w);
    w->pool = pool;
    w->index = (int)slot + 1;
    /* Born with signals blocked: none may land on it before it sets its
     * own mask (worker_main). */
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &lat_idle_sigmask, &old);
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -1;
    w->started = 1;
    return 0;
}

/* Joins every started thread except the calling one, which is detached.
 * Contract: GIL held (released while joining), mu not held. */
static void join_threads(lat_pool *pool)
{
    for (Py_ssize_t i = 0; i < pool->nthreads; i++) {
        lat_worker *w = &pool->workers[i];
        if (!w->started)
            continue;
        w->started = 0;
        if (pthread_equal(w->thread, pthread_self())) {
            pthread_detach(w->thread);
            continue;
        }
        Py_BEGIN_ALLOW_THREADS
        pthread_join(w->thread, NULL);
        Py_END_ALLOW_THREADS
    }
}

/* ---- submission ------------------------------------------------------- */

/* Raises and returns -1 if the pool cannot take work.  Contract: GIL held. */
int lat_pool_check_usable(lat_pool *pool)
{
    if (pool->forked) {
        PyErr_Format(LatErr_Forked,
                     "this task pool was opened in process %ld and cannot be "
                     "used in the forked child %ld; open a new pool in the child",
                     pool->owner_pid, (long)getpid());
        return -1;
    }
    if (pool->closing) {
        lat_worker *w = lat_tls_worker;
        if (w == NULL || w->pool != pool) {
            PyErr_SetString(PyExc_RuntimeError, "the task pool is closed");
            return -1;
        }
        /* One of the pool's own tasks: close() waits for the threads, and a
         * thread leaves only when the queue is empty, so without cancel its
         * children still run.  With cancel the task ends quietly. */
        if (pool->cancelling) {
            PyErr_SetString(LatErr_Cancelled, "the task pool is being cancelled");
            return -1;
        }
    }
    return 0;
}

/* Undoes a push whose thread could not start, if no thread can run it.
 * Contract: GIL held, mu not held. */
static int spawn_failed(lat_pool *pool)
{
    lat_item it;
    int orphan = 0;
    lat_lock(&pool->mu);
    pool->nthreads--;
    if (--pool->alive == 0)
        lat_wake(pool, LAT_WAIT_EXIT);
    if (pool->nthreads == 0 && lat_queue_pop_tail(&pool->q, &it)) {
        lat_account_done(pool, &it);
        orphan = 1;
    }
    lat_unlock(&pool->mu);
    if (!orphan)
        return 0;
    lat_item_clear(&it);
    release_work_ref(pool);  /* the caller's reference keeps the pool */
    PyErr_SetString(PyExc_RuntimeError, "can't start a worker thread");
    return -1;
}

/* Queues an item, stealing its references, and wakes or starts a worker.
 * Returns 0, or -1 with an exception set.  Contract: GIL held. */
static LAT_HOT int enqueue(lat_pool *pool, lat_item *it)
{
    Py_ssize_t slot = -1;
    int signal_idle = 0;
    lat_lock(&pool->mu);
    if (lat_queue_push(&pool->q, it) < 0) {
        lat_unlock(&pool->mu);
        lat_item_clear(it);
        PyErr_NoMemory();
        return -1;
    }
    if (it->kind == ITEM_TASK) {
        if (!pool->work_ref) {
            pool->work_ref = 1;
            Py_INCREF(pool);  /* released by release_work_ref */
        }
        pool->pending++;
        pool->submitted++;
        if (it->owner)
            ((lat_group *)it->owner)->pending++;
    }
    if (pool->idle > pool->wakes_pending) {
        pool->wakes_pending++;
        signal_idle = 1;
    } else if (pool->nthreads < pool->max_workers) {
        slot = pool->nthreads++;
        pool->alive++;
    } else {
        lat_wake(pool, LAT_WAIT_HELP);
    }
    lat_unlock(&pool->mu);
    /* Signalled after unlocking, so the woken worker does not go straight
     * back to sleep on mu.  No wake-up is lost: an idle worker counted
     * under mu has read work_cv's sequence number (lat_cond_wait). */
    if (signal_idle)
        lat_cond_signal(&pool->work_cv);
    if (slot >= 0 && spawn_worker(pool, slot) < 0)
        return spawn_failed(pool);
    return 0;
}

int lat_pool_enqueue(lat_pool *pool, lat_item *it)
{
    return enqueue(pool, it);
}

/* A task an inline pool ran at once counts as submitted and finished, as
 * a queued task does.  Contract: GIL held, mu not held. */
void lat_count_inline_task(lat_pool *pool)
{
    lat_lock(&pool->mu);
    pool->submitted++;
    pool->finished++;
    lat_unlock(&pool->mu);
}

/* Contract: GIL held, mu not held. */
static int queue_is_full(lat_pool *pool)
{
    lat_lock(&pool->mu);
    int full = is_saturated(pool);
    lat_unlock(&pool->mu);
    return full;
}

/* Contract: mu held (lat_wait's predicate). */
static int pred_room(lat_pool *pool, void *arg)
{
    (void)arg;
    return !is_saturated(pool) || pool->first_error != NULL || pool->closing;
}

/* block_when_saturated: after a call of the opening thread made every
 * worker busy, that call returns only once a worker is free (a worker never
 * blocks, so nested calls cannot deadlock).  Returns 0, or -1 with an
 * exception set (Ctrl-C, or a task error delivered meanwhile).
 * Contract: GIL held, mu not held. */
static int wait_for_room(lat_pool *pool, int from_worker)
{
    if (!pool->block_when_saturated || from_worker ||
        PyThread_get_thread_ident() != pool->owner_ident || !queue_is_full(pool))
        return 0;
    lat_lock(&pool->mu);
    pool->room_waiters++;
    lat_unlock(&pool->mu);
    int r = lat_wait(pool, LAT_WAIT_ROOM, pred_room, NULL, -1);
    lat_lock(&pool->mu);
    pool->room_waiters--;
    lat_unlock(&pool->mu);
    if (r < 0)
        return -1;
    if (pool->first_error != NULL)
        return raise_at_call(pool);
    return 0;
}

/* Submits a fire-and-forget task.  Steals args and kwargs (either may be
 * NULL: no arguments of that kind), even on failure; fn and group are
 * borrowed.
 * Returns 0, or -1 with an exception set (when wait_for_room fails, the
 * task is queued already: it runs unless the pool halts).
 * Contract: GIL held. */
int lat_pool_submit(lat_pool *pool, PyObject *fn, PyObject *args,
                    PyObject *kwargs, uint32_t flags, PyObject *group)
{
    lat_worker *w = lat_tls_worker;
    int from_worker = w != NULL && w->pool == pool;
    if (lat_halt_check() < 0 || lat_pool_check_usable(pool) < 0)
        goto fail;
    if (pool->first_error != NULL) {
        raise_at_call(pool);
        goto fail;
    }
    if (group != NULL) {
        lat_group *g = (lat_group *)group;
        if (g->pool == NULL) {
            g->pool = (lat_pool *)Py_NewRef(pool);
        } else if (g->pool != pool) {
            PyErr_SetString(PyExc_RuntimeError,
                            "a task group can only wait for tasks of one pool; "
                            "this task goes to another pool");
            goto fail;
        }
    }
    lat_site site = lat_caller_site();
    lat_item it = {.fn = Py_NewRef(fn), .args = args, .kwargs = kwargs,
                   .owner = Py_XNewRef(group), .site_code = site.code,
                   .site_offset = site.offset, .kind = ITEM_TASK, .flags = (uint16_t)flags};
    if (enqueue(pool, &it) < 0)
        return -1;
    return wait_for_room(pool, from_worker);
fail:
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return -1;
}

/* ---- Python type ------------------------------------------------------ */

/* The range half of the worker-count rule: `shown` is what the error
 * quotes (the value, or the text it was read from). */
static int workers_in_range(long long v, int overflow, const char *name,
                            PyObject *shown, Py_ssize_t *out)
{
    if (overflow > 0 || v > LAT_MAX_WORKERS) {
        PyErr_Format(PyExc_ValueError, "%s must be at most %d, got %R",
                     name, LAT_MAX_WORKERS, shown);
        return -1;
    }
    if (overflow < 0 || v <= 0) {
        PyErr_Format(PyExc_ValueError, "%s must be greater than 0, got %R", name, shown);
        return -1;
    }
    *out = (Py_ssize_t)v;
    return 0;
}

int lat_check_workers(PyObject *obj, const char *name, Py_ssize_t *out)
{
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %R", name, obj);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    return workers_in_range(v, overflow, name, obj, out);
}

int lat_workers_from_text(PyObject *text, const char *name, Py_ssize_t *out)
{
    PyObject *stripped = PyObject_CallMethod(text, "strip", NULL);
    if (stripped == NULL)
        return -1;
    if (PyUnicode_Check(stripped) && PyUnicode_GET_LENGTH(stripped) == 0) {
        Py_DECREF(stripped);
        return 1;
    }
    PyObject *num = PyLong_FromUnicodeObject(stripped, 10);
    Py_DECREF(stripped);
    if (num == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError))
            return -1;
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be a positive integer, got %R", name, text);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(num, &overflow);
    Py_DECREF(num);
    if (v == -1 && PyErr_Occurred())
        return -1;
    return workers_in_range(v, overflow, name, text, out);
}

static int pool_close_impl(lat_pool *pool, int cancel);

static int pred_all_ready(lat_pool *pool, void *arg)
{
    (void)arg;
    return pool->ready >= pool->nthreads;
}

/* Starts every worker now and waits until each has its thread state and its
 * names, so that a burst of work does not pay for thread start-up.
 * Contract: GIL held (released while waiting). */
static int start_all_workers(lat_pool *pool)
{
    while (pool->nthreads < pool->max_workers) {
        lat_lock(&pool->mu);
        Py_ssize_t slot = pool->nthreads++;
        pool->alive++;
        lat_unlock(&pool->mu);
        if (spawn_worker(pool, slot) < 0) {
            spawn_failed(pool);
            PyErr_Format(PyExc_RuntimeError, "can't start worker thread %zd of %zd",
                         slot + 1, pool->max_workers);
            return -1;
        }
    }
    return lat_wait(pool, LAT_WAIT_READY, pred_all_ready, NULL, -1) < 0 ? -1 : 0;
}

static PyObject *pool_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"max_workers", "name_prefix", "block_when_saturated",
                             "inline", "eager", "halt_on_error", NULL};
    PyObject *workers_obj, *prefix = NULL;
    int block = 0, inline_mode = 0, eager = 0, halt_on_error = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|Upppp:Pool", kwlist, &workers_obj,
                                     &prefix, &block, &inline_mode, &eager, &halt_on_error))
        return NULL;
    Py_ssize_t max_workers;
    if (lat_check_workers(workers_obj, "max_workers", &max_workers) < 0)
        return NULL;
    lat_pool *pool = (lat_pool *)type->tp_alloc(type, 0);
    if (pool == NULL)
        return NULL;
    pool->mu = (lat_mutex)LAT_MUTEX_INIT;
    pool->work_cv = (lat_cond)LAT_COND_INIT;
    pool->workers = PyMem_Calloc((size_t)max_workers, sizeof(lat_worker));
    if (pool->workers == NULL) {
        Py_DECREF(pool);
        return PyErr_NoMemory();
    }
    pool->results = PyList_New(0);
    pool->errors = PyList_New(0);
    pool->name_prefix = prefix ? Py_NewRef(prefix) : PyUnicode_FromString("lateral");
    if (!pool->results || !pool->errors || !pool->name_prefix) {
        Py_DECREF(pool);
        return NULL;
    }
    pool->max_workers = max_workers;
    pool->block_when_saturated = block;
    pool->inline_mode = inline_mode;
    pool->halt_on_error = halt_on_error;
    pool->owner_ident = PyThread_get_thread_ident();
    pool->owner_pid = (long)getpid();
    pool->live_next = live_pools;
    if (live_pools)
        live_pools->live_prev = pool;
    live_pools = pool;
    if (eager && !inline_mode && start_all_workers(pool) < 0) {
        PyObject *type_, *value, *tb;
        PyErr_Fetch(&type_, &value, &tb);
        if (pool_close_impl(pool, 1) < 0)
            PyErr_Clear(); /* the start-up error is the one to report */
        PyErr_Restore(type_, value, tb);
        Py_DECREF(pool);
        return NULL;
    }
    return (PyObject *)pool;
}

static int pred_idle(lat_pool *pool, void *arg)
{
    (void)arg;
    return pool->pending == 0 || pool->first_error != NULL;
}

static int pred_exited(lat_pool *pool, void *arg)
{
    (void)arg;
    return pool->alive == 0;
}

static int refuse_own_worker(lat_pool *pool, const char *what)
{
    lat_worker *w = lat_tls_worker;
    if (w != NULL && w->pool == pool) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s cannot be called from inside one of the pool's own tasks "
                     "(it would wait for itself); use a task group instead", what);
        return -1;
    }
    return 0;
}

/* Done when the pool has closed itself (close_when_idle) and its threads
 * have exited, or a task's error halted it. */
static int pred_finished(lat_pool *pool, void *arg)
{
    (void)arg;
    return (pool->closing && pool->alive == 0) || pool->first_error != NULL;
}

/* finish()'s timeout is for the tasks, as join()'s: the threads' exit that
 * it waits for too is close()'s to wait for, untimed.  Contract: GIL held,
 * mu not held. */
static int no_task_left(lat_pool *pool)
{
    lat_lock(&pool->mu);
    int idle = pool->pending == 0;
    lat_unlock(&pool->mu);
    return idle;
}

/* join() and finish(): waits on `target` until `done`; then raises the first
 * task error, or PoolTimeoutError.  Contract: GIL held (released while
 * waiting). */
static PyObject *wait_for_tasks(lat_pool *pool, const char *what, const void *target,
                                lat_pred done, double timeout)
{
    if (pool->forked) {
        lat_pool_check_usable(pool);
        return NULL;
    }
    if (refuse_own_worker(pool, what) < 0)
        return NULL;
    int r = lat_wait(pool, target, done, NULL, timeout);
    if (r < 0)
        return NULL;
    if (pool->first_error != NULL) {
        lat_pool_deliver_error(pool);
        return NULL;
    }
    if (r == 0 && !no_task_left(pool)) {
        lat_timeout_error(LatErr_PoolTimeout, "the task pool's tasks", timeout, pool->pending);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *pool_join(lat_pool *pool, PyObject *args, PyObject *kw)
{
    double timeout;
    if (lat_parse_timeout(args, kw, "|O:join", &timeout) < 0)
        return NULL;
    return wait_for_tasks(pool, "join()", LAT_WAIT_IDLE, pred_idle, timeout);
}

/* join() for a pool about to close: the task that leaves the pool idle
 * closes it, so its thread exits at once instead of parking until this one
 * wakes and calls close().  A task still running may queue more. */
static PyObject *pool_finish(lat_pool *pool, PyObject *args, PyObject *kw)
{
    double timeout;
    if (lat_parse_timeout(args, kw, "|O:finish", &timeout) < 0)
        return NULL;
    if (pool->forked || pool->inline_mode)  /* no thread to close early */
        return wait_for_tasks(pool, "finish()", LAT_WAIT_IDLE, pred_idle, timeout);
    if (refuse_own_worker(pool, "finish()") < 0)
        return NULL;
    lat_lock(&pool->mu);
    pool->close_when_idle = 1;
    if (pool->pending == 0)
        close_locked(pool);
    lat_unlock(&pool->mu);
    return wait_for_tasks(pool, "finish()", LAT_WAIT_EXIT, pred_finished, timeout);
}

/* Raises the undelivered first error, if any. */
static PyObject *pool_check(lat_pool *pool, PyObject *unused)
{
    (void)unused;
    if (pool->first_error != NULL) {
        lat_pool_deliver_error(pool);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Stops the pool: no new work; with cancel, queued work is dropped and
 * running tasks are interrupted.  Waits for the threads to end. */
static int pool_close_impl(lat_pool *pool, int cancel)
{
    if (pool->raised_at_call != NULL) {
        Py_CLEAR(pool->raised_at_call);
        uninstall_unraisable_hook();
    }
    if (pool->forked || pool->inline_mode) {
        pool->closing = 1;
        return 0;
    }
    if (refuse_own_worker(pool, "close()") < 0)
        return -1;
    lat_lock(&pool->mu);
    if (cancel)
        pool->cancelling = 1;
    close_locked(pool);
    lat_wake(pool, NULL);  /* a block_when_saturated wait ends on closing */
    lat_unlock(&pool->mu);
    if (cancel)
        halt_work(pool);
    if (lat_wait(pool, LAT_WAIT_EXIT, pred_exited, NULL, -1) < 0)
        return -1;
    join_threads(pool);
    release_work_ref(pool);  /* nothing is pending now; the caller holds a reference */
    return 0;
}

static PyObject *pool_close(lat_pool *pool, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"cancel", NULL};
    int cancel = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:close", kwlist, &cancel))
        return NULL;
    if (pool_close_impl(pool, cancel) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pool_submit_method(lat_pool *pool, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"fn", "args", "kwargs", "has_return_value", NULL};
    PyObject *fn, *fargs = NULL, *fkw = NULL;
    int has_return = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O!O!p:submit", kwlist, &fn,
                                     &PyTuple_Type, &fargs, &PyDict_Type, &fkw,
                                     &has_return))
        return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "fn must be callable, not %.100s",
                     Py_TYPE(fn)->tp_name);
        return NULL;
    }
    fargs = fargs ? Py_NewRef(fargs) : PyTuple_New(0);
    if (fargs == NULL)
        return NULL;
    fkw = fkw ? PyDict_Copy(fkw) : NULL;
    if (PyErr_Occurred()) {
        Py_DECREF(fargs);
        return NULL;
    }
    if (pool->inline_mode) {
        PyObject *res = PyObject_Call(fn, fargs, fkw);
        Py_DECREF(fargs);
        Py_XDECREF(fkw);
        /* Same rules as a threaded task (UnexpectedReturnValueError). */
        lat_count_inline_task(pool);
        if (lat_finish_call(pool, lat_tls_group, fn, has_return, res) < 0 &&
            lat_inline_failed(pool, fn) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (lat_pool_submit(pool, fn, fargs, fkw, has_return ? TASK_HAS_RETURN : 0,
                        lat_tls_group) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pool_enter(lat_pool *pool, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(pool);
}

static PyObject *pool_exit(lat_pool *pool, PyObject *args)
{
    PyObject *et = PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, 0) : Py_None;
    int failed = et != Py_None;
    PyObject *r = NULL;
    if (!failed) {
        /* PyArg_ParseTupleAndKeywords needs a tuple, never NULL. */
        PyObject *noargs = PyTuple_New(0);
        r = noargs ? pool_finish(pool, noargs, NULL) : NULL;
        Py_XDECREF(noargs);
    }
    /* Keep join's error aside while close() waits and may run Python code. */
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (pool_close_impl(pool, failed || r == NULL) < 0) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        Py_XDECREF(r);
        return NULL;
    }
    PyErr_Restore(type, value, tb);
    if (!failed && r == NULL)
        return NULL;
    Py_XDECREF(r);
    Py_RETURN_FALSE;
}

static void pool_dealloc(lat_pool *pool)
{
    PyObject_GC_UnTrack(pool);
    if (pool->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)pool);
    if (pool->live_prev)
        pool->live_prev->live_next = pool->live_next;
    else if (live_pools == pool)
        live_pools = pool->live_next;
    if (pool->live_next)
        pool->live_next->live_prev = pool->live_prev;
    if (lat_current_pool == pool)
        lat_current_pool = NULL;
    if (lat_tls_worker != NULL && lat_tls_worker->pool == pool)
        lat_tls_worker = NULL;  /* freed by its own worker: it is leaving */
    if (pool->raised_at_call != NULL) {
        Py_CLEAR(pool->raised_at_call);
        uninstall_unraisable_hook();
    }
    if (pool->workers && !pool->forked) {
        /* Unreachable with nothing pending (see release_work_ref): its
         * threads are idle or starting; stop them before the memory goes. */
        lat_lock(&pool->mu);
        pool->closing = 1;
        lat_cond_broadcast(&pool->work_cv);
        lat_unlock(&pool->mu);
        join_threads(pool);
    }
    lat_queue dropped;
    lat_queue_take_all(&pool->q, &dropped);
    clear_dropped(&dropped);
    lat_queue_free(&pool->q);  /* its kept blocks */
    PyMem_Free(pool->workers);
    Py_CLEAR(pool->name_prefix);
    Py_CLEAR(pool->results);
    Py_CLEAR(pool->errors);
    Py_CLEAR(pool->first_error);
    Py_CLEAR(pool->raised_at_call);
    Py_TYPE(pool)->tp_free((PyObject *)pool);
}

static int pool_traverse(lat_pool *pool, visitproc visit, void *arg)
{
    Py_VISIT(pool->results);
    Py_VISIT(pool->errors);
    Py_VISIT(pool->first_error);
    Py_VISIT(pool->raised_at_call);
    return 0;
}

static int pool_clear(lat_pool *pool)
{
    Py_CLEAR(pool->results);
    Py_CLEAR(pool->errors);
    Py_CLEAR(pool->first_error);
    Py_CLEAR(pool->raised_at_call);
    return 0;
}

static PyObject *pool_get_results(lat_pool *p, void *c) { (void)c; return Py_NewRef(p->results); }
static PyObject *pool_get_errors(lat_pool *p, void *c) { (void)c; return Py_NewRef(p->errors); }
static PyObject *pool_get_max_workers(lat_pool *p, void *c) { (void)c; return PyLong_FromSsize_t(p->max_workers); }
static PyObject *pool_get_pending(lat_pool *p, void *c) { (void)c; return PyLong_FromSsize_t(p->pending); }
static PyObject *pool_get_submitted(lat_pool *p, void *c) { (void)c; return PyLong_FromSsize_t(p->submitted); }
static PyObject *pool_get_finished(lat_pool *p, void *c) { (void)c; return PyLong_FromSsize_t(p->finished); }
static PyObject *pool_get_queued(lat_pool *p, void *c) { (void)c; return PyLong_FromSize_t(p->q.len); }
static PyObject *pool_get_threads(lat_pool *p, void *c) { (void)c; return PyLong_FromSsize_t(p->forked ? 0 : p->alive); }
static PyObject *pool_get_closed(lat_pool *p, void *c) { (void)c; return PyBool_FromLong(p->closing); }
static PyObject *pool_get_forked(lat_pool *p, void *c) { (void)c; return PyBool_FromLong(p->forked); }
static PyObject *pool_get_inline(lat_pool *p, void *c) { (void)c; return PyBool_FromLong(p->inline_mode); }
static PyObject *pool_get_halted(lat_pool *p, void *c) { (void)c; return PyBool_FromLong(p->first_error != NULL); }
static PyObject *pool_get_halt_on_error(lat_pool *p, void *c) { (void)c; return PyBool_FromLong(p->halt_on_error); }

static PyGetSetDef pool_getset[] = {
    {"results", (getter)pool_get_results, NULL, "Collected return values (a list).", NULL},
    {"errors", (getter)pool_get_errors, NULL, "Every exception raised by a task, in order.", NULL},
    {"max_workers", (getter)pool_get_max_workers, NULL, "Maximum number of worker threads.", NULL},
    {"pending", (getter)pool_get_pending, NULL, "Tasks queued or running.", NULL},
    {"submitted", (getter)pool_get_submitted, NULL, "Tasks ever queued.", NULL},
    {"finished", (getter)pool_get_finished, NULL, "Tasks that ran or were dropped.", NULL},
    {"queued", (getter)pool_get_queued, NULL, "Items waiting for a worker.", NULL},
    {"threads", (getter)pool_get_threads, NULL, "Worker threads alive.", NULL},
    {"closed", (getter)pool_get_closed, NULL, "True once close() was called.", NULL},
    {"forked", (getter)pool_get_forked, NULL, "True in a child forked from the owner.", NULL},
    {"inline", (getter)pool_get_inline, NULL, "True if tasks run in the calling thread.", NULL},
    {"halted", (getter)pool_get_halted, NULL, "True while a task error waits to be raised.", NULL},
    {"halt_on_error", (getter)pool_get_halt_on_error, NULL,
     "False if a task's Exception is only recorded on errors (the pool goes on).", NULL},
    {NULL}
};

PyObject *lat_pool_map(lat_pool *pool, PyObject *args, PyObject *kw);
PyObject *lat_pool_call(lat_pool *pool, PyObject *args, PyObject *kw);

static PyMethodDef pool_methods[] = {
    {"submit", (PyCFunction)(void (*)(void))pool_submit_method, METH_VARARGS | METH_KEYWORDS,
     "submit(fn, args=(), kwargs=None, has_return_value=False)\n--\n\n"
     "Queue a fire-and-forget call. The first exception halts the pool "
     "(with halt_on_error=False, an Exception is only recorded on errors)."},
    {"join", (PyCFunction)(void (*)(void))pool_join, METH_VARARGS | METH_KEYWORDS,
     "join(timeout=None)\n--\n\nWait until no task is queued or running; "
     "raise the first task error, or PoolTimeoutError."},
    {"finish", (PyCFunction)(void (*)(void))pool_finish, METH_VARARGS | METH_KEYWORDS,
     "finish(timeout=None)\n--\n\njoin(), closing the pool as its last task ends "
     "(tasks may still queue tasks); then wait for its threads to exit. close() "
     "afterwards only reaps them."},
    {"check", (PyCFunction)pool_check, METH_NOARGS,
     "check()\n--\n\nRaise the first task error if one is waiting."},
    {"close", (PyCFunction)(void (*)(void))pool_close, METH_VARARGS | METH_KEYWORDS,
     "close(cancel=False)\n--\n\nStop the pool and wait for its threads. With "
     "cancel, drop queued work and interrupt running tasks."},
    {"map", (PyCFunction)(void (*)(void))lat_pool_map, METH_VARARGS | METH_KEYWORDS,
     "map(fn, items, *, unpack=True, extras=None, arg_type=None, stop_on_error=True, "
     "tickets=0, results=None)\n--\n\nStart calling fn on every item; return a Batch."},
    {"call", (PyCFunction)(void (*)(void))lat_pool_call, METH_VARARGS | METH_KEYWORDS,
     "call(fn, args=(), kwargs=None)\n--\n\nStart one call; return a Batch of one."},
    {"__enter__", (PyCFunction)pool_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)pool_exit, METH_VARARGS, NULL},
    {NULL}
};

PyTypeObject LatPool_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_lateral.Pool",
    .tp_basicsize = sizeof(lat_pool),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Pool(max_workers, name_prefix='lateral', block_when_saturated=False, inline=False, "
              "eager=False, halt_on_error=True)\n"
              "--\n\nA pool of worker threads with a FIFO task queue.",
    .tp_new = pool_new,
    .tp_dealloc = (destructor)pool_dealloc,
    .tp_traverse = (traverseproc)pool_traverse,
    .tp_clear = (inquiry)pool_clear,
    .tp_methods = pool_methods,
    .tp_getset = pool_getset,
    .tp_weaklistoffset = offsetof(lat_pool, weakreflist),
};

/* ---- process-wide events ----------------------------------------------- */

/* Run by an os.register_at_fork(after_in_child=...) hook, GIL held.
 * mu is deliberately not held across the fork: before-fork hooks run Python
 * code (which may hand the GIL to a worker that then blocks on mu while
 * holding the GIL), so locking it there could deadlock the parent. */
/* In the child only this thread exists: the workers, their waits and their
 * queue belong to the parent.  This thread held the GIL at the fork, so it
 * was not inside mu; if mu is locked, a worker was popping an item without
 * the GIL and the queue may be half-updated: leak it rather than decref
 * garbage. */
void lat_after_fork_child(void)
{
    lat_tls_worker = NULL;
    lat_tls_group = NULL;
    for (lat_pool *p = live_pools; p; p = p->live_next) {
        int queue_intact = lat_trylock(&p->mu);
        p->mu = (lat_mutex)LAT_MUTEX_INIT;
        p->work_cv = (lat_cond)LAT_COND_INIT;
        p->forked = 1;
        p->waiters = NULL;
        p->idle = p->wakes_pending = p->alive = p->room_waiters = p->ready = 0;
        p->pending = 0;
        for (Py_ssize_t i = 0; i < p->nthreads; i++)
            p->workers[i].started = 0;
        if (queue_intact) {
            lat_queue dropped;
            lat_queue_take_all(&p->q, &dropped);
            clear_dropped(&dropped);
        } else {
            p->q = (lat_queue){0};  /* leaked, as said above */
        }
    }
}

/* At interpreter exit: cancel and close every pool still open. */
static lat_pool *first_open_pool(void)
{
    for (lat_pool *p = live_pools; p; p = p->live_next)
        if (!p->forked && !p->inline_mode && !(p->closing && p->alive == 0))
            return p;
    return NULL;
}

/* A task error that no thread collected is printed, not lost. */
static void report_uncollected_error(lat_pool *pool)
{
    if (pool->first_error == NULL)
        return;
    lat_pool_deliver_error(pool);
    PyErr_WriteUnraisable((PyObject *)pool);
}

int lat_shutdown_all(void)
{
    lat_pool *p;
    /* Restart from the head each time: the list may change while a close
     * releases the GIL. */
    while ((p = first_open_pool()) != NULL) {
        Py_INCREF(p);
        int r = pool_close_impl(p, 1);
        if (r == 0)
            report_uncollected_error(p);
        Py_DECREF(p);
        if (r < 0)
            return -1;
    }
    return 0;
}
