/* module.c: the _lateral module: exceptions, types, the current pool, and the
 * process-wide hooks (fork and interpreter exit).
 * Contract: every function here runs with the GIL held.
 */
#include "lateral.h"

PyObject *LatErr_Base, *LatErr_UnexpectedReturn, *LatErr_PoolAllocated,
    *LatErr_PoolTimeout, *LatErr_Cancelled, *LatErr_Forked;

sigset_t lat_program_sigmask, lat_idle_sigmask;

/* The program's mask is read in the importing thread (normally the main
 * one).  Idle workers block everything else, so signals reach the main
 * thread; faults stay deliverable: blocked, they kill the process silently
 * and faulthandler / sanitizers cannot report a crash in a task. */
static void init_sigmasks(void)
{
    pthread_sigmask(SIG_SETMASK, NULL, &lat_program_sigmask);
    sigfillset(&lat_idle_sigmask);
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset(&lat_idle_sigmask, faults[i]);
}

static PyObject *set_current_pool(PyObject *mod, PyObject *arg)
{
    (void)mod;
    if (arg != Py_None && !PyObject_TypeCheck(arg, &LatPool_Type)) {
        PyErr_Format(PyExc_TypeError, "expected a Pool or None, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    lat_pool *old = lat_current_pool;
    lat_current_pool = arg == Py_None ? NULL : (lat_pool *)Py_NewRef(arg);
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

static PyObject *get_current_pool(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return Py_NewRef(lat_current_pool ? (PyObject *)lat_current_pool : Py_None);
}

static PyObject *current_group(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return Py_NewRef(lat_tls_group ? lat_tls_group : Py_None);
}

static PyObject *in_worker(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyBool_FromLong(lat_tls_worker != NULL);
}

static PyObject *after_fork_child(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    lat_after_fork_child();
    Py_RETURN_NONE;
}

static PyObject *check_timeout(PyObject *mod, PyObject *arg)
{
    (void)mod;
    double seconds;
    if (lat_timeout_seconds(arg, &seconds) < 0)
        return NULL;
    if (seconds < 0)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(seconds);
}

static PyObject *check_workers(PyObject *mod, PyObject *args, PyObject *kw)
{
    (void)mod;
    static char *kwlist[] = {"value", "name", NULL};
    PyObject *value;
    const char *name = "max_workers";
    Py_ssize_t n;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|s:check_workers", kwlist, &value, &name))
        return NULL;
    if (lat_check_workers(value, name, &n) < 0)
        return NULL;
    return PyLong_FromSsize_t(n);
}

/* os.environ[variable] under the worker-count rule; None when unset or blank. */
static PyObject *workers_from_env(PyObject *mod, PyObject *variable)
{
    (void)mod;
    if (!PyUnicode_Check(variable)) {
        PyErr_Format(PyExc_TypeError, "variable must be a str, got %R", variable);
        return NULL;
    }
    const char *name = PyUnicode_AsUTF8(variable);
    PyObject *os = name ? PyImport_ImportModule("os") : NULL;
    PyObject *environ = os ? PyObject_GetAttrString(os, "environ") : NULL;
    PyObject *text = environ ? PyObject_CallMethod(environ, "get", "O", variable) : NULL;
    Py_XDECREF(environ);
    Py_XDECREF(os);
    if (text == NULL)
        return NULL;
    Py_ssize_t n;
    int found = text == Py_None ? 1 : lat_workers_from_text(text, name, &n);
    Py_DECREF(text);
    if (found < 0)
        return NULL;
    return found == 1 ? Py_NewRef(Py_None) : PyLong_FromSsize_t(n);
}

static PyObject *checkpoint(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    if (lat_halt_check() < 0)
        return NULL;
    Py_RETURN_NONE;
}

#if PY_VERSION_HEX < 0x030B0000
/* 3.10 prints no __notes__.  With in_message, the note goes into the
 * message when the message is all str(exc) shows (BaseException.__str__
 * over one str); otherwise onto __notes__, where code (and the
 * exceptiongroup backport's traceback printing) finds it. */
static int add_note_310(PyObject *exc, PyObject *note, int in_message)
{
    PyObject *args = ((PyBaseExceptionObject *)exc)->args;
    if (in_message &&
        Py_TYPE(exc)->tp_str == ((PyTypeObject *)PyExc_BaseException)->tp_str &&
        args != NULL && PyTuple_GET_SIZE(args) == 1 &&
        PyUnicode_Check(PyTuple_GET_ITEM(args, 0))) {
        PyObject *text = PyUnicode_FromFormat("%U\n%U", PyTuple_GET_ITEM(args, 0), note);
        PyObject *new_args = text ? PyTuple_Pack(1, text) : NULL;
        Py_XDECREF(text);
        if (new_args == NULL)
            return -1;
        int r = PyObject_SetAttrString(exc, "args", new_args);
        Py_DECREF(new_args);
        return r;
    }
    PyObject *notes = PyObject_GetAttrString(exc, "__notes__");
    if (notes == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        notes = PyList_New(0);
        if (notes == NULL || PyObject_SetAttrString(exc, "__notes__", notes) < 0) {
            Py_XDECREF(notes);
            return -1;
        }
    }
    int r = PyList_Check(notes) ? PyList_Append(notes, note) : 0;
    Py_DECREF(notes);
    return r;
}
#endif

int lat_add_note(PyObject *exc, PyObject *note, int in_message)
{
    if (!PyExceptionInstance_Check(exc) || !PyUnicode_Check(note)) {
        PyErr_Format(PyExc_TypeError, "add_note needs an exception and a str, got %.100s and %.100s",
                     Py_TYPE(exc)->tp_name, Py_TYPE(note)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX >= 0x030B0000
    (void)in_message;
    PyObject *r = PyObject_CallMethod(exc, "add_note", "O", note);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
#else
    return add_note_310(exc, note, in_message);
#endif
}

static PyObject *add_note(PyObject *mod, PyObject *args, PyObject *kw)
{
    (void)mod;
    static char *kwlist[] = {"exc", "note", "in_message", NULL};
    PyObject *exc, *note;
    int in_message = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|p:add_note", kwlist, &exc, &note,
                                     &in_message) ||
        lat_add_note(exc, note, in_message) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* locked_call(lock, fn, *args): fn(*args) with the lock held.
 * Contract: once lock.acquire() returned, lock.release() is called on every
 * path, and no Python code runs in between but fn's own.  A `with lock:`
 * block has no such guarantee: on CPython 3.14 the interpreter runs pending
 * signal handlers right after __enter__ returns, before the block's cleanup
 * covers it, so a handler that raises there leaves the lock held for good.
 * An acquire interrupted by a raising handler fails with the lock free. */
static PyObject *locked_call(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "locked_call(lock, fn, *args) needs a lock and a function");
        return NULL;
    }
    PyObject *acquired = PyObject_CallMethod(args[0], "acquire", NULL);
    if (acquired == NULL)
        return NULL;
    Py_DECREF(acquired);
    PyObject *result = PyObject_Vectorcall(args[1], args + 2, (size_t)(nargs - 2), NULL);
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *released = PyObject_CallMethod(args[0], "release", NULL);
    if (released == NULL) {  /* a lock that cannot be released: that error wins */
        Py_XDECREF(result);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return NULL;
    }
    Py_DECREF(released);
    PyErr_Restore(type, value, tb);
    return result;
}

static PyObject *shutdown_all(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    if (lat_shutdown_all() < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"set_current_pool", set_current_pool, METH_O,
     "set_current_pool(pool)\n--\n\nMake pool (or None) the one @task calls go to."},
    {"get_current_pool", get_current_pool, METH_NOARGS,
     "get_current_pool()\n--\n\nThe pool @task calls go to, or None."},
    {"current_group", current_group, METH_NOARGS,
     "current_group()\n--\n\nThe task group of this thread, or None."},
    {"in_worker", in_worker, METH_NOARGS,
     "in_worker()\n--\n\nTrue in a worker thread of any pool."},
    {"_after_fork_child", after_fork_child, METH_NOARGS, NULL},
    {"check_timeout", check_timeout, METH_O,
     "check_timeout(timeout)\n--\n\nThe timeout as float seconds, or None; "
     "TypeError/ValueError naming a bad value."},
    {"check_workers", (PyCFunction)(void (*)(void))check_workers, METH_VARARGS | METH_KEYWORDS,
     "check_workers(value, name='max_workers')\n--\n\nThe worker count as an int in "
     "1..MAX_WORKERS; TypeError/ValueError naming name and a bad value."},
    {"workers_from_env", workers_from_env, METH_O,
     "workers_from_env(variable)\n--\n\nThe worker count set by environment variable "
     "variable, or None if unset or blank; ValueError naming it and its text if it is "
     "no count in 1..MAX_WORKERS."},
    {"locked_call", (PyCFunction)(void (*)(void))locked_call, METH_FASTCALL,
     "locked_call(lock, fn, /, *args)\n--\n\nfn(*args) with lock held; the lock is "
     "released on every path, and no signal handler can run between its acquire and "
     "the call (as one can in a with block on CPython 3.14)."},
    {"checkpoint", checkpoint, METH_NOARGS,
     "checkpoint()\n--\n\nA safe point: in a task whose pool is halting, raise "
     "TaskCancelled; elsewhere do nothing."},
    {"_halt_event", (PyCFunction)(void (*)(void))lat_halt_event, METH_FASTCALL, NULL},
    {"_unraisable_hook", lat_unraisable_hook, METH_O, NULL},
    {"split_args", (PyCFunction)(void (*)(void))lat_split_args, METH_VARARGS | METH_KEYWORDS,
     "split_args(item, unpack=True, arg_type=None)\n--\n\nThe (args tuple, kwargs dict) "
     "of one call, by the unpacking rule of map: an arg_type instance is explicit; "
     "without unpack the item is the one argument; a tuple or list (exactly) is the "
     "positional arguments, a trailing dict in it the keywords; a dict is keywords."},
    {"add_note", (PyCFunction)(void (*)(void))add_note, METH_VARARGS | METH_KEYWORDS,
     "add_note(exc, note, in_message=False)\n--\n\nAdd the str note to the exception "
     "exc: exc.add_note(note) on Python 3.11+.  On 3.10, appended to exc.__notes__; "
     "with in_message, to the message instead when that is all str(exc) shows "
     "(one str argument, BaseException.__str__)."},
    {"shutdown_all", shutdown_all, METH_NOARGS,
     "shutdown_all()\n--\n\nCancel and close every open pool (run at exit)."},
    {NULL}
};

static struct PyModuleDef lateral_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_lateral",
    .m_doc = "Native worker pool shared by pylateral, parallel and strand.",
    .m_size = -1,
    .m_methods = module_methods,
};

/* An exception class stored as _lateral.<name>.  `shown` is its qualified
 * name: these are pylateral's public errors, so tracebacks and pickles name
 * them pylateral.X, where users import them from. */
static PyObject *new_exception(PyObject *mod, const char *name, const char *shown,
                               PyObject *bases, const char *doc)
{
    PyObject *exc = PyErr_NewExceptionWithDoc(shown, doc, bases, NULL);
    if (exc == NULL || PyModule_AddObject(mod, name, Py_NewRef(exc)) < 0) {
        Py_XDECREF(exc);
        return NULL;
    }
    return exc;
}

static int add_exceptions(PyObject *mod)
{
    LatErr_Base = new_exception(mod, "LateralError", "pylateral.PylateralError",
                                PyExc_Exception,
                                "Base class of the errors raised by lateral.");
    if (LatErr_Base == NULL)
        return -1;
    LatErr_UnexpectedReturn = new_exception(
        mod, "UnexpectedReturnValueError", "pylateral.UnexpectedReturnValueError", LatErr_Base,
        "A task returned a value without has_return_value=True.");
    LatErr_PoolAllocated = new_exception(
        mod, "TaskPoolAlreadyAllocated", "pylateral.TaskPoolAlreadyAllocated", LatErr_Base,
        "A task pool is already open in this process.");
    PyObject *bases = PyTuple_Pack(2, LatErr_Base, PyExc_TimeoutError);
    LatErr_PoolTimeout = bases ? new_exception(mod, "PoolTimeoutError",
                                               "pylateral.PoolTimeoutError", bases,
                                               "The task pool's timeout ran out.") : NULL;
    Py_XDECREF(bases);
    LatErr_Cancelled = new_exception(
        mod, "TaskCancelled", "pylateral.TaskCancelled", PyExc_BaseException,
        "Raised inside a running task to stop it after another task failed.");
    LatErr_Forked = new_exception(
        mod, "PoolForkedError", "pylateral.PoolForkedError", LatErr_Base,
        "A pool opened in a parent process was used in a forked child.");
    if (!LatErr_UnexpectedReturn || !LatErr_PoolAllocated || !LatErr_PoolTimeout ||
        !LatErr_Cancelled || !LatErr_Forked)
        return -1;
    return 0;
}

static int add_type(PyObject *mod, PyTypeObject *type, const char *name)
{
    if (PyType_Ready(type) < 0)
        return -1;
    Py_INCREF(type);
    if (PyModule_AddObject(mod, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

/* os.register_at_fork(after_in_child=...) and atexit.register(shutdown_all). */
static int register_hooks(PyObject *mod)
{
    PyObject *os = PyImport_ImportModule("os");
    PyObject *atexit = os ? PyImport_ImportModule("atexit") : NULL;
    PyObject *child = atexit ? PyObject_GetAttrString(mod, "_after_fork_child") : NULL;
    PyObject *shut = child ? PyObject_GetAttrString(mod, "shutdown_all") : NULL;
    PyObject *reg = shut ? PyObject_GetAttrString(os, "register_at_fork") : NULL;
    PyObject *kw = reg ? Py_BuildValue("{sO}", "after_in_child", child) : NULL;
    PyObject *empty = kw ? PyTuple_New(0) : NULL;
    PyObject *r1 = empty ? PyObject_Call(reg, empty, kw) : NULL;
    PyObject *r2 = r1 ? PyObject_CallMethod(atexit, "register", "O", shut) : NULL;
    int rc = r2 ? 0 : -1;
    Py_XDECREF(r2);
    Py_XDECREF(r1);
    Py_XDECREF(empty);
    Py_XDECREF(kw);
    Py_XDECREF(reg);
    Py_XDECREF(shut);
    Py_XDECREF(child);
    Py_XDECREF(atexit);
    Py_XDECREF(os);
    return rc;
}

PyMODINIT_FUNC PyInit__lateral(void)
{
    PyObject *mod = PyModule_Create(&lateral_module);
    if (mod == NULL)
        return NULL;
    init_sigmasks();
    if (add_exceptions(mod) < 0 ||
        add_type(mod, &LatPool_Type, "Pool") < 0 ||
        add_type(mod, &LatTask_Type, "Task") < 0 ||
        add_type(mod, &LatGroup_Type, "TaskGroup") < 0 ||
        add_type(mod, &LatBatch_Type, "Batch") < 0 ||
        PyModule_AddIntConstant(mod, "MAX_WORKERS", LAT_MAX_WORKERS) < 0 ||
        register_hooks(mod) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
