/* task.c: the @task wrapper (the fast submission path) and task groups.
 *
 * A Task call is a vectorcall straight into the current pool: one tuple for
 * the positional arguments (none without), one 48-byte queue slot, no
 * Python-level wrapper frame.
 * Contract: everything here runs with the GIL held.
 */
#include "lateral.h"

typedef struct {
    PyObject_HEAD
    PyObject *fn;
    PyObject *dict;
    PyObject *weakreflist;
    vectorcallfunc vectorcall;
    int has_return;
} lat_task;

/* Appends a return value to the group's list, else the pool's. */
int lat_collect_result(lat_pool *pool, PyObject *group, PyObject *value)
{
    if (group != NULL)
        return PyList_Append(((lat_group *)group)->results, value);
    if (pool != NULL)
        return PyList_Append(pool->results, value);
    return 0;
}

/* "name (file:line)" of a function, or its repr; NULL with an error set. */
static PyObject *describe_function(PyObject *fn)
{
    PyObject *name = PyObject_GetAttrString(fn, "__qualname__");
    if (name == NULL || !PyUnicode_Check(name)) {  /* "%U" below needs a str */
        PyErr_Clear();
        Py_XDECREF(name);
        return PyObject_Repr(fn);
    }
    PyObject *code = PyObject_GetAttrString(fn, "__code__");
    PyObject *file = code ? PyObject_GetAttrString(code, "co_filename") : NULL;
    PyObject *line = file ? PyObject_GetAttrString(code, "co_firstlineno") : NULL;
    PyObject *text = line ? PyUnicode_FromFormat("%S (%S:%S)", name, file, line)
                          : Py_NewRef(name);
    if (line == NULL)
        PyErr_Clear();
    Py_XDECREF(line);
    Py_XDECREF(file);
    Py_XDECREF(code);
    Py_DECREF(name);
    return text;
}

static void raise_unexpected_return(PyObject *fn, PyObject *res)
{
    PyObject *where = describe_function(fn);
    if (where == NULL)
        return;
    PyErr_Format(LatErr_UnexpectedReturn,
                 "task %U returned a value (%.100s); declare it with "
                 "@pylateral.task(has_return_value=True) to collect it",
                 where, Py_TYPE(res)->tp_name);
    Py_DECREF(where);
}

/* lat_finish_call's cases other than None from a task without a return
 * value.  Steals res; returns 0, or -1 with an exception set. */
int lat_finish_call_other(lat_pool *pool, PyObject *group, PyObject *fn,
                          int has_return, PyObject *res)
{
    if (res == NULL)
        return -1;
    int r = 0;
    if (has_return) {
        r = lat_collect_result(pool, group, res);
    } else if (res != Py_None) {
        raise_unexpected_return(fn, res);
        r = -1;
    }
    Py_DECREF(res);
    return r;
}

/* ---- call sites ---------------------------------------------------------- */

/* "task f(...) queued at file:line in caller", or NULL with an error set. */
static PyObject *call_site_note(PyObject *fn, lat_site site)
{
    PyObject *code = site.code;
    PyObject *name = PyObject_GetAttrString(fn, "__qualname__");
    if (name == NULL || !PyUnicode_Check(name)) {
        PyErr_Clear();
        Py_XSETREF(name, PyObject_Repr(fn));
    }
    PyObject *file = name ? PyObject_GetAttrString(code, "co_filename") : NULL;
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *caller = file ? PyObject_GetAttrString(code, "co_qualname") : NULL;
#else
    PyObject *caller = file ? PyObject_GetAttrString(code, "co_name") : NULL;
#endif
    PyObject *note = NULL;
    if (caller != NULL)
        note = PyUnicode_FromFormat("task %U(...) queued at %U:%d in %U", name, file,
                                    PyCode_Addr2Line((PyCodeObject *)code, (int)site.offset),
                                    caller);
    Py_XDECREF(caller);
    Py_XDECREF(file);
    Py_XDECREF(name);
    return note;
}

/* Notes on a task's exception which call queued the task; on 3.10, in the
 * message (where it can): the task's traceback does not show that call,
 * and 3.10 prints no notes.  A failure to do so is printed, not raised:
 * the task's own error is the one to report.
 * Contract: GIL held, no exception set. */
void lat_note_call_site(PyObject *exc, PyObject *fn, lat_site site)
{
    if (site.code == NULL)
        return;
    PyObject *note = call_site_note(fn, site);
    if (note == NULL || lat_add_note(exc, note, 1) < 0)
        PyErr_WriteUnraisable(exc);
    Py_XDECREF(note);
}

/* ---- running tasks -------------------------------------------------------- */

/* A task that ran in the calling thread failed: its error is raised at the
 * call, except in a pool that does not halt on errors, where an Exception
 * is recorded like a queued task's.  Returns 0 if it was recorded, else -1
 * with the exception still set.  Contract: GIL held, an exception set. */
int lat_inline_failed(lat_pool *pool, PyObject *fn)
{
    if (pool == NULL || pool->halt_on_error || !PyErr_ExceptionMatches(PyExc_Exception))
        return -1;
    lat_site site = lat_caller_site();
    lat_pool_record_error(pool, fn, site);
    Py_XDECREF(site.code);
    return 0;
}

static PyObject *task_call_inline(lat_task *t, lat_pool *pool, PyObject *const *args,
                                  size_t nargsf, PyObject *kwnames)
{
    PyObject *res = PyObject_Vectorcall(t->fn, args, nargsf, kwnames);
    if (pool != NULL)
        lat_count_inline_task(pool);
    if (lat_finish_call(pool, lat_tls_group, t->fn, t->has_return, res) < 0 &&
        lat_inline_failed(pool, t->fn) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *kwargs_from_kwnames(PyObject *const *values, PyObject *kwnames)
{
    PyObject *kw = PyDict_New();
    if (kw == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyDict_SetItem(kw, PyTuple_GET_ITEM(kwnames, i), values[i]) < 0) {
            Py_DECREF(kw);
            return NULL;
        }
    }
    return kw;
}

/* Packs the call and queues it.  Returns 0, or -1 with an exception set. */
static int task_submit(lat_task *t, lat_pool *pool, PyObject *const *args,
                       size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *tuple = NULL;  /* none without positional arguments */
    if (nargs > 0) {
        if ((tuple = PyTuple_New(nargs)) == NULL)
            return -1;
        for (Py_ssize_t i = 0; i < nargs; i++)
            PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    }
    PyObject *kw = NULL;
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        kw = kwargs_from_kwnames(args + nargs, kwnames);
        if (kw == NULL) {
            Py_XDECREF(tuple);
            return -1;
        }
    }
    return lat_pool_submit(pool, t->fn, tuple, kw, t->has_return ? TASK_HAS_RETURN : 0,
                           lat_tls_group);
}

static PyObject *task_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf,
                                 PyObject *kwnames)
{
    lat_task *t = (lat_task *)op;
    lat_pool *pool = lat_current_pool;
    if (pool == NULL || pool->inline_mode)
        return task_call_inline(t, pool, args, nargsf, kwnames);
    /* The allocations may run a GC pass whose finalizers replace (and free)
     * the current pool: keep the one this call started with alive. */
    Py_INCREF(pool);
    int rc = task_submit(t, pool, args, nargsf, kwnames);
    Py_DECREF(pool);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *task_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"fn", "has_return_value", NULL};
    PyObject *fn;
    int has_return = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p:Task", kwlist, &fn, &has_return))
        return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "a task must wrap a callable, not %.100s",
                     Py_TYPE(fn)->tp_name);
        return NULL;
    }
    lat_task *t = (lat_task *)type->tp_alloc(type, 0);
    if (t == NULL)
        return NULL;
    t->fn = Py_NewRef(fn);
    t->has_return = has_return;
    t->vectorcall = task_vectorcall;
    return (PyObject *)t;
}

static PyObject *task_descr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    (void)type;
    if (obj == NULL || obj == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static void task_dealloc(lat_task *t)
{
    PyObject_GC_UnTrack(t);
    if (t->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)t);
    Py_CLEAR(t->fn);
    Py_CLEAR(t->dict);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static int task_traverse(lat_task *t, visitproc visit, void *arg)
{
    Py_VISIT(t->fn);
    Py_VISIT(t->dict);
    return 0;
}

static int task_clear(lat_task *t)
{
    Py_CLEAR(t->fn);
    Py_CLEAR(t->dict);
    return 0;
}

static PyObject *task_repr(lat_task *t)
{
    return PyUnicode_FromFormat("<pylateral task %R>", t->fn);
}

static PyMemberDef task_members[] = {
    {"has_return_value", T_INT, offsetof(lat_task, has_return), READONLY,
     "True if return values are collected."},
    {NULL}
};

static PyObject *task_get_function(lat_task *t, void *c)
{
    (void)c;
    return Py_NewRef(t->fn);
}

static PyGetSetDef task_getset[] = {
    {"function", (getter)task_get_function, NULL, "The wrapped function.", NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL}
};

PyTypeObject LatTask_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_lateral.Task",
    .tp_basicsize = sizeof(lat_task),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Task(fn, has_return_value=False)\n--\n\n"
              "A function whose calls are queued on the current task pool.",
    .tp_new = task_new,
    .tp_dealloc = (destructor)task_dealloc,
    .tp_traverse = (traverseproc)task_traverse,
    .tp_clear = (inquiry)task_clear,
    .tp_repr = (reprfunc)task_repr,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(lat_task, vectorcall),
    .tp_descr_get = task_descr_get,
    .tp_dictoffset = offsetof(lat_task, dict),
    .tp_weaklistoffset = offsetof(lat_task, weakreflist),
    .tp_members = task_members,
    .tp_getset = task_getset,
};

/* ---- task groups -------------------------------------------------------- */

static PyObject *group_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    if (!PyArg_ParseTuple(args, ":TaskGroup") || (kw && PyDict_GET_SIZE(kw))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "TaskGroup() takes no arguments");
        return NULL;
    }
    lat_group *g = (lat_group *)type->tp_alloc(type, 0);
    if (g == NULL)
        return NULL;
    g->results = PyList_New(0);
    if (g->results == NULL) {
        Py_DECREF(g);
        return NULL;
    }
    return (PyObject *)g;
}

static int pred_group(lat_pool *pool, void *arg)
{
    lat_group *g = arg;
    /* Not pool->closing: close() without cancel still runs the group's
     * tasks, and with cancel it drops or interrupts them, so pending ends. */
    return g->pending == 0 || pool->first_error != NULL;
}

static int pred_group_or_work(lat_pool *pool, void *arg)
{
    return pred_group(pool, arg) || pool->q.len > 0;
}

/* Waits for the group's tasks.  A worker of the same pool runs queued items
 * while it waits, so groups opened inside tasks cannot starve the pool.
 * Returns 1 when done, 0 on timeout, -1 with an exception set. */
static int group_wait_done(lat_group *g, lat_pool *pool, double timeout)
{
    lat_worker *w = lat_tls_worker;
    int helper = w != NULL && w->pool == pool;
    double deadline = timeout >= 0 ? lat_now() + timeout : -1;
    for (;;) {
        if (helper && lat_pool_help_one(pool, w))
            continue;
        double left = deadline < 0 ? -1 : deadline - lat_now();
        if (deadline >= 0 && left < 0)
            left = 0;
        int r = helper ? lat_wait(pool, LAT_WAIT_HELP, pred_group_or_work, g, left)
                       : lat_wait(pool, g, pred_group, g, left);
        if (r <= 0)
            return r;
        lat_lock(&pool->mu);
        int done = pred_group(pool, g);
        lat_unlock(&pool->mu);
        if (done)
            return 1;
    }
}

PyObject *lat_group_wait(lat_group *g, double timeout)
{
    lat_pool *pool = g->pool;
    if (pool == NULL || pool->inline_mode || pool->forked)
        Py_RETURN_NONE;
    if (lat_halt_check() < 0)
        return NULL;
    int r = group_wait_done(g, pool, timeout);
    if (r < 0)
        return NULL;
    if (pool->first_error != NULL) {
        lat_pool_deliver_error(pool);
        return NULL;
    }
    if (r == 0) {
        lat_timeout_error(LatErr_PoolTimeout, "the task group's tasks", timeout, g->pending);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *group_enter(lat_group *g, PyObject *unused)
{
    (void)unused;
    if (g->entered) {
        PyErr_SetString(PyExc_RuntimeError, "this task group was already entered");
        return NULL;
    }
    g->entered = 1;
    g->pool = (lat_pool *)Py_XNewRef(lat_current_pool);
    g->saved_group = Py_XNewRef(lat_tls_group);
    lat_tls_group = Py_NewRef(g);
    return Py_NewRef(g);
}

static PyObject *group_exit(lat_group *g, PyObject *args)
{
    PyObject *et = PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, 0) : Py_None;
    if (lat_tls_group == (PyObject *)g) {
        /* Back to the enclosing group, which its own owner keeps alive. */
        lat_tls_group = g->saved_group;
        Py_CLEAR(g->saved_group);
        Py_DECREF(g);
    }
    if (et != Py_None)
        Py_RETURN_FALSE;
    PyObject *r = lat_group_wait(g, -1);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *group_join(lat_group *g, PyObject *args, PyObject *kw)
{
    double timeout;
    if (lat_parse_timeout(args, kw, "|O:join", &timeout) < 0)
        return NULL;
    return lat_group_wait(g, timeout);
}

static void group_dealloc(lat_group *g)
{
    PyObject_GC_UnTrack(g);
    Py_CLEAR(g->results);
    Py_CLEAR(g->saved_group);
    Py_CLEAR(g->pool);
    Py_TYPE(g)->tp_free((PyObject *)g);
}

static int group_traverse(lat_group *g, visitproc visit, void *arg)
{
    Py_VISIT(g->results);
    Py_VISIT(g->saved_group);
    Py_VISIT(g->pool);
    return 0;
}

static int group_clear(lat_group *g)
{
    Py_CLEAR(g->results);
    Py_CLEAR(g->saved_group);
    Py_CLEAR(g->pool);
    return 0;
}

static PyObject *group_get_results(lat_group *g, void *c) { (void)c; return Py_NewRef(g->results); }
static PyObject *group_get_pending(lat_group *g, void *c) { (void)c; return PyLong_FromSsize_t(g->pending); }

static PyGetSetDef group_getset[] = {
    {"results", (getter)group_get_results, NULL,
     "Return values of the group's tasks, in completion order.", NULL},
    {"pending", (getter)group_get_pending, NULL, "Tasks of the group not finished.", NULL},
    {NULL}
};

static PyMethodDef group_methods[] = {
    {"__enter__", (PyCFunction)group_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)group_exit, METH_VARARGS, NULL},
    {"join", (PyCFunction)(void (*)(void))group_join, METH_VARARGS | METH_KEYWORDS,
     "join(timeout=None)\n--\n\nWait for the group's tasks."},
    {NULL}
};

PyTypeObject LatGroup_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_lateral.TaskGroup",
    .tp_basicsize = sizeof(lat_group),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "TaskGroup()\n--\n\nWaits, on exit, for the tasks started inside it "
              "(and the tasks those start) and gathers their return values.",
    .tp_new = group_new,
    .tp_dealloc = (destructor)group_dealloc,
    .tp_traverse = (traverseproc)group_traverse,
    .tp_clear = (inquiry)group_clear,
    .tp_methods = group_methods,
    .tp_getset = group_getset,
};
