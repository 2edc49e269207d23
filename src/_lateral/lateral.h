/* lateral.h: shared declarations of the _lateral core.
 *
 * Locking contract, for every function in this extension:
 *   - pool->mu protects the queue, the counters, the waiter list and the
 *     worker slots.  It is held only for short, non-blocking sections and
 *     never while calling into Python or waiting for the GIL.
 *   - Python objects are touched only with the GIL held.
 *   - Lock order is GIL -> mu.  A thread holding mu never asks for the GIL.
 */
#ifndef LATERAL_H
#define LATERAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#if PY_VERSION_HEX < 0x030B0000
#include <frameobject.h>  /* 3.10: PyFrameObject's f_lasti (lat_caller_site) */
#endif
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "lock.h"

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *lat_new_ref(PyObject *o) { Py_INCREF(o); return o; }
static inline PyObject *lat_xnew_ref(PyObject *o) { Py_XINCREF(o); return o; }
#define Py_NewRef(o) lat_new_ref((PyObject *)(o))
#define Py_XNewRef(o) lat_xnew_ref((PyObject *)(o))
#endif

/* On the few static functions of a fire-and-forget task's path that the
 * compiler would otherwise call (it weighs size): each call there costs
 * ~10 instructions of a ~1,000-instruction task. */
#define LAT_HOT __attribute__((always_inline)) inline

/* Kinds of queue items. */
enum { ITEM_TASK = 1, ITEM_TICKET = 2 };
/* Flags of a task item. */
enum { TASK_HAS_RETURN = 1 };

/* The most threads a pool may have (Pool(max_workers) and the packages). */
#define LAT_MAX_WORKERS 100000

/* Where a task was queued: the calling frame's code object and the byte
 * offset of the call in it.  The line is worked out only if the task fails
 * (lat_note_call_site): a task call is a hot path. */
typedef struct {
    PyObject *code;    /* strong, or NULL (no Python caller) */
    uint32_t offset;
} lat_site;

/* One queued unit of work: 48 bytes, no Python allocation of its own. */
typedef struct {
    PyObject *fn;      /* TASK: the callable; TICKET: NULL */
    PyObject *args;    /* TASK: tuple, or NULL for no arguments; TICKET: NULL */
    PyObject *kwargs;  /* TASK: dict or NULL */
    PyObject *owner;   /* TASK: TaskGroup or NULL; TICKET: Batch */
    PyObject *site_code;   /* TASK: lat_site.code; TICKET: NULL */
    uint32_t site_offset;  /* TASK: lat_site.offset */
    uint16_t kind;
    uint16_t flags;
} lat_item;

/* Items per queue block (queue.c): 12 KiB of items. */
#define LAT_BLOCK_ITEMS 256
typedef struct lat_block lat_block;

typedef struct {
    lat_block *head, *tail;  /* oldest and newest block, or NULL */
    lat_block *spare;        /* an emptied block kept for reuse, or NULL */
    size_t head_i, tail_i;   /* next item to pop in head, free slot in tail */
    size_t len;
} lat_queue;

/* A thread blocked in a wait; it sleeps on its own lock so that a signal
 * interrupts the wait (PyThread_acquire_lock_timed with intr_flag). */
typedef struct lat_waiter {
    struct lat_waiter *next, *prev;
    PyThread_type_lock lock;
    const void *target;
    int linked;
} lat_waiter;

/* Waiter targets that are not objects. */
extern const char LAT_WAIT_IDLE[], LAT_WAIT_ROOM[], LAT_WAIT_EXIT[], LAT_WAIT_HELP[],
    LAT_WAIT_READY[];

struct lat_pool;

typedef struct {
    struct lat_pool *pool;
    pthread_t thread;
    unsigned long ident;
    int index;          /* 1-based, used in the thread name */
    int started;        /* pthread_create succeeded; needs a join */
    int busy;           /* running an item (GIL held to change) */
    int halt;           /* halt.c: HALT_NONE, HALT_PENDING or HALT_RAISED (GIL) */
    const char *halt_reason;      /* why, as TaskCancelled will say */
    PyThreadState *tstate;        /* this worker's thread state */
    int traced;                   /* halt.c (3.10, 3.11): its trace function is set */
    int arming;                   /* another thread is setting it (GIL may be let go) */
    Py_tracefunc prev_trace;      /* ... and the one it replaced */
    PyObject *prev_traceobj;
} lat_worker;

typedef struct lat_pool {
    PyObject_HEAD
    lat_mutex mu;
    lat_cond work_cv;
    lat_queue q;
    lat_waiter *waiters;
    lat_worker *workers;
    Py_ssize_t max_workers;
    Py_ssize_t nthreads;      /* slots handed out (starting or alive) */
    Py_ssize_t alive;         /* threads that have not yet exited */
    Py_ssize_t idle;          /* threads sleeping on work_cv */
    Py_ssize_t wakes_pending; /* signals sent, not yet consumed */
    Py_ssize_t pending;       /* TASK items queued or running */
    Py_ssize_t submitted;     /* TASK items ever queued (progress reports) */
    Py_ssize_t finished;      /* TASK items that ran or were dropped */
    Py_ssize_t room_waiters;  /* threads blocked by block_when_saturated */
    Py_ssize_t ready;         /* threads that finished starting up */
    uint64_t generation;      /* bumped whenever the queue is dropped */
    int closing, cancelling, inline_mode, forked, block_when_saturated;
    int halt_on_error;        /* 0: an Exception of a task is only recorded */
    int close_when_idle;      /* finish(): the last task to end closes the pool */
    int work_ref;             /* holds a reference to itself while tasks are pending */
    unsigned long owner_ident;
    long owner_pid;
    PyObject *name_prefix;    /* str */
    PyObject *results;        /* list of collected return values */
    PyObject *errors;         /* list of every task exception */
    PyObject *first_error;    /* undelivered first exception, or NULL */
    PyObject *raised_at_call; /* first error raised at a task call, until close */
    PyObject *weakreflist;
    struct lat_pool *live_next, *live_prev;
} lat_pool;

typedef struct {
    PyObject_HEAD
    Py_ssize_t pending;       /* under the pool's mu */
    PyObject *results;        /* list */
    lat_pool *pool;           /* strong; the pool its tasks go to */
    PyObject *saved_group;    /* group this one replaced on __enter__ */
    int entered;
} lat_group;

typedef struct {
    PyObject_HEAD
    PyObject *fn;             /* NULL: items are (fn, args, kwargs) */
    PyObject *items;          /* a tuple, or the caller's exact list (read with the GIL) */
    PyObject *results;        /* list, one slot per item */
    PyObject *errors;         /* dict index -> exception */
    PyObject *extras;         /* dict or NULL */
    PyObject *arg_type;       /* class whose instances carry args/kwargs */
    PyObject *single_type;    /* a type whose items are the single argument, or NULL */
    lat_pool *pool;           /* strong */
    Py_ssize_t n, next;       /* next index to claim (GIL) */
    Py_ssize_t tickets;       /* tickets not finished (mu) */
    Py_ssize_t finished;      /* items that ran to an end (GIL) */
    int unpack, stop_on_error, cancelled, done;
    PyObject *callbacks;      /* list of done callbacks not called yet, or NULL */
    PyObject *weakreflist;
} lat_batch;

/* module.c */
extern PyObject *LatErr_Base, *LatErr_UnexpectedReturn, *LatErr_PoolAllocated,
    *LatErr_PoolTimeout, *LatErr_Cancelled, *LatErr_Forked;
extern PyTypeObject LatPool_Type, LatTask_Type, LatGroup_Type, LatBatch_Type;
extern lat_pool *lat_current_pool;          /* GIL */
/* initial-exec: a thread-local read is one instruction, not a call into
 * the dynamic loader per access (a third of them per task).  The two
 * pointers fit easily in the static TLS glibc keeps for loaded modules. */
#if defined(__GNUC__)
#define LAT_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define LAT_TLS _Thread_local
#endif
extern LAT_TLS lat_worker *lat_tls_worker;
extern LAT_TLS PyObject *lat_tls_group; /* borrowed */

/* queue.c */
int lat_queue_push(lat_queue *q, const lat_item *it);
int lat_queue_pop(lat_queue *q, lat_item *out);
int lat_queue_pop_tail(lat_queue *q, lat_item *out);
void lat_queue_each(const lat_queue *q, void (*fn)(const lat_item *, void *), void *arg);
void lat_queue_take_all(lat_queue *q, lat_queue *into);
void lat_queue_free(lat_queue *q);

/* wait.c */
void lat_wake(lat_pool *pool, const void *target);  /* mu held; NULL: all */
typedef int (*lat_pred)(lat_pool *pool, void *arg); /* mu held */
int lat_wait(lat_pool *pool, const void *target, lat_pred done, void *arg,
             double timeout);                        /* GIL held */
double lat_now(void);
/* The worker-count rule of the whole project: an int in 1..LAT_MAX_WORKERS
 * (bools refused), else TypeError/ValueError naming `name` and the value;
 * from text (an environment variable), surrounding blanks are ignored and
 * blank text gives 1 (no count).  GIL held; 0, or -1 with an exception set. */
int lat_check_workers(PyObject *obj, const char *name, Py_ssize_t *out);
int lat_workers_from_text(PyObject *text, const char *name, Py_ssize_t *out);
int lat_timeout_seconds(PyObject *obj, double *out);
int lat_parse_timeout(PyObject *args, PyObject *kw, const char *fmt, double *out);
void lat_timeout_error(PyObject *exc_type, const char *what, double timeout,
                       Py_ssize_t left);

/* pool.c */
int lat_pool_submit(lat_pool *pool, PyObject *fn, PyObject *args,
                    PyObject *kwargs, uint32_t flags, PyObject *group);
int lat_pool_enqueue(lat_pool *pool, lat_item *it);
void lat_count_inline_task(lat_pool *pool);
int lat_pool_check_usable(lat_pool *pool);
int lat_pool_deliver_error(lat_pool *pool);
PyObject *lat_unraisable_hook(PyObject *mod, PyObject *unraisable);
void lat_pool_record_error(lat_pool *pool, PyObject *fn, lat_site site);
int lat_inline_failed(lat_pool *pool, PyObject *fn);
int lat_pool_help_one(lat_pool *pool, lat_worker *w);      /* GIL held */
void lat_after_fork_child(void);
int lat_shutdown_all(void);

/* halt.c: stopping running tasks at safe points (GIL held, mu not held). */
int lat_halt_prepare(void);              /* before lat_halt_request, -1 on error */
void lat_halt_request(lat_worker *w);   /* another thread's busy worker */
void lat_halt_finish(lat_worker *w);    /* its own thread, outermost item done */
int lat_halt_check(void);               /* -1 with TaskCancelled in a halted worker */
PyObject *lat_halt_event(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);

/* module.c: adds a note to an exception: BaseException.add_note on 3.11+;
 * on 3.10 onto __notes__, or with in_message into the message where it
 * can.  Returns 0, or -1 with an exception set. */
int lat_add_note(PyObject *exc, PyObject *note, int in_message);

/* module.c: the signal mask the program had when _lateral was imported
 * (workers run tasks with it) and the one idle workers sleep with. */
extern sigset_t lat_program_sigmask, lat_idle_sigmask;

/* task.c */
int lat_collect_result(lat_pool *pool, PyObject *group, PyObject *value);
int lat_finish_call_other(lat_pool *pool, PyObject *group, PyObject *fn,
                          int has_return, PyObject *res);

/* Turns a call's outcome into the task's: collects or rejects the value.
 * Steals res; returns 0, or -1 with an exception set.  Inline for the
 * common outcome, a task's None, for the reason LAT_HOT gives. */
static inline int lat_finish_call(lat_pool *pool, PyObject *group, PyObject *fn,
                                  int has_return, PyObject *res)
{
    if (res == Py_None && !has_return) {
        Py_DECREF(res);
        return 0;
    }
    return lat_finish_call_other(pool, group, fn, has_return, res);
}

/* Where the running Python code is: its code object and the byte offset of
 * its current instruction (the call into us).  No traceback is taken and
 * no line computed: the first call from a frame makes its frame object,
 * later ones reuse it.  Contract: GIL held; never sets an exception. */
static LAT_HOT lat_site lat_caller_site(void)
{
    lat_site site = {NULL, 0};
    PyFrameObject *frame = PyEval_GetFrame();  /* borrowed */
    if (frame == NULL)
        return site;
    site.code = (PyObject *)PyFrame_GetCode(frame);
#if PY_VERSION_HEX >= 0x030B0000
    int lasti = PyFrame_GetLasti(frame);
#else
    int lasti = frame->f_lasti * (int)sizeof(_Py_CODEUNIT);
#endif
    site.offset = lasti > 0 ? (uint32_t)lasti : 0;
    return site;
}
void lat_note_call_site(PyObject *exc, PyObject *fn, lat_site site);
PyObject *lat_group_wait(lat_group *g, double timeout);

/* batch.c */
/* One call's arguments, unpacked from an item by lat_split_call. */
typedef struct {
    PyObject *const *argv;    /* n positional arguments (borrowed) */
    Py_ssize_t n;
    PyObject *kw;             /* keyword arguments (a dict, borrowed) or NULL */
    PyObject *owned;          /* what argv points into, when made here */
    PyObject *owned_kw;       /* what kw is, when fetched here */
    PyObject *single;         /* the item, when it is the one argument */
} lat_call;
int lat_split_call(PyObject *item, int unpack, PyObject *arg_type, lat_call *c);
PyObject *lat_call_with_extras(PyObject *fn, PyObject *const *argv, Py_ssize_t n,
                               PyObject *kw, PyObject *extras);

/* fn(*argv) through fn's vectorcall slot when it has one: around that
 * call, PyObject_Vectorcall adds a wrapper and a result check costing ~40
 * instructions, a twentieth of a tiny task.  Of the check, the case that
 * matters is kept: a callable that failed without setting an exception.
 * Contract: GIL held. */
static LAT_HOT PyObject *lat_call_positional(PyObject *fn, PyObject *const *argv,
                                             Py_ssize_t n)
{
    vectorcallfunc call = PyVectorcall_Function(fn);
    if (call == NULL)
        return PyObject_Vectorcall(fn, argv, (size_t)n, NULL);
    PyObject *res = call(fn, argv, (size_t)n, NULL);
    if (res == NULL && !PyErr_Occurred())
        PyErr_Format(PyExc_SystemError, "%R returned NULL without setting an exception", fn);
    return res;
}

/* fn(*argv, **kw, **extras); item keywords win over extras.  kw and
 * extras may be NULL.  Inline: every task and batch item is called here.
 * Contract: GIL held. */
static LAT_HOT PyObject *lat_call_vec(PyObject *fn, PyObject *const *argv, Py_ssize_t n,
                                      PyObject *kw, PyObject *extras)
{
    if (extras != NULL && PyDict_GET_SIZE(extras) != 0)
        return lat_call_with_extras(fn, argv, n, kw, extras);
    /* VectorcallDict's own kwargs check costs a tenth of a tiny call */
    if (kw == NULL)
        return lat_call_positional(fn, argv, n);
    return PyObject_VectorcallDict(fn, argv, (size_t)n, kw);
}
void lat_call_clear(lat_call *c);
PyObject *lat_split_args(PyObject *mod, PyObject *args, PyObject *kw);
void lat_batch_run_ticket(lat_batch *b);
void lat_batch_ticket_done(lat_batch *b);  /* mu held */
void lat_batch_call_callbacks(lat_batch *b); /* GIL held, mu not held */

#endif
