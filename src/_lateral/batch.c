/* batch.c: many calls with ordered results and no per-item queue traffic.
 *
 * map() queues at most max_workers "tickets" for a batch.  A worker holding
 * a ticket claims the next unclaimed index (under the GIL, so the claim is
 * atomic), runs that call and stores its result in the batch's slot, until
 * no index is left or the batch is cancelled.  Slow items spread over all
 * workers; fast items run back to back without touching the queue.
 * Contract: GIL held everywhere unless a function says "mu held".
 */
#include "lateral.h"

/* lat_call_vec with extras to merge in.  Contract: GIL held. */
PyObject *lat_call_with_extras(PyObject *fn, PyObject *const *argv, Py_ssize_t n,
                               PyObject *kw, PyObject *extras)
{
    PyObject *merged = PyDict_Copy(extras);
    if (merged == NULL)
        return NULL;
    if (kw != NULL && PyDict_Update(merged, kw) < 0) {
        Py_DECREF(merged);
        return NULL;
    }
    PyObject *res = PyObject_VectorcallDict(fn, argv, (size_t)n, merged);
    Py_DECREF(merged);
    return res;
}

static PyObject *call_tuple(PyObject *fn, PyObject *args, PyObject *kw, PyObject *extras)
{
    if (!PyTuple_Check(args)) {
        PyErr_Format(PyExc_TypeError, "positional arguments must be a tuple, not %.100s",
                     Py_TYPE(args)->tp_name);
        return NULL;
    }
    if (kw == Py_None)
        kw = NULL;
    if (kw != NULL && !PyDict_Check(kw)) {
        PyErr_Format(PyExc_TypeError, "keyword arguments must be a dict, not %.100s",
                     Py_TYPE(kw)->tp_name);
        return NULL;
    }
    return lat_call_vec(fn, &PyTuple_GET_ITEM(args, 0), PyTuple_GET_SIZE(args), kw, extras);
}

/* An arg_type instance carries .args (a tuple) and .kwargs (a dict or None)
 * explicitly; *c gets owned references to both. */
static int split_arg_object(PyObject *item, lat_call *c)
{
    c->owned = PyObject_GetAttrString(item, "args");
    if (c->owned == NULL)
        return -1;
    if (!PyTuple_Check(c->owned)) {
        PyErr_Format(PyExc_TypeError, "positional arguments must be a tuple, not %.100s",
                     Py_TYPE(c->owned)->tp_name);
        return -1;
    }
    c->argv = &PyTuple_GET_ITEM(c->owned, 0);
    c->n = PyTuple_GET_SIZE(c->owned);
    c->owned_kw = PyObject_GetAttrString(item, "kwargs");
    if (c->owned_kw == NULL)
        return -1;
    if (c->owned_kw != Py_None && !PyDict_Check(c->owned_kw)) {
        PyErr_Format(PyExc_TypeError, "keyword arguments must be a dict, not %.100s",
                     Py_TYPE(c->owned_kw)->tp_name);
        return -1;
    }
    c->kw = c->owned_kw == Py_None ? NULL : c->owned_kw;
    return 0;
}

/* The one argument-unpacking rule of lateral, for parallel's map parameters
 * and par calls and strand's dispatch items:
 *   - an arg_type instance is explicit (even without unpack);
 *   - without unpack, the item is the single argument;
 *   - a tuple or a list (exactly: a namedtuple is one value) is the
 *     positional arguments, a trailing dict in it the keyword arguments;
 *   - a dict is the keyword arguments;
 *   - anything else is the single argument.
 * Fills *c (argv, n, kw: borrowed from item or owned by *c); the caller
 * calls lat_call_clear(c) whatever the result.  Returns 0, or -1 with an
 * exception set.  Contract: GIL held. */
int lat_split_call(PyObject *item, int unpack, PyObject *arg_type, lat_call *c)
{
    *c = (lat_call){NULL, 0, NULL, NULL, NULL, item};
    if (arg_type != NULL && PyObject_TypeCheck(item, (PyTypeObject *)arg_type))
        return split_arg_object(item, c);
    if (unpack && PyDict_Check(item)) {
        c->kw = item;
        return 0;
    }
    if (!unpack || !(PyTuple_CheckExact(item) || PyList_CheckExact(item))) {
        c->argv = &c->single;
        c->n = 1;
        return 0;
    }
    /* A list becomes a tuple: the callee could change the list meanwhile. */
    PyObject *tuple = PyList_CheckExact(item) ? (c->owned = PyList_AsTuple(item)) : item;
    if (tuple == NULL)
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(tuple);
    if (n > 0 && PyDict_Check(PyTuple_GET_ITEM(tuple, n - 1)))
        c->kw = PyTuple_GET_ITEM(tuple, --n);
    c->argv = &PyTuple_GET_ITEM(tuple, 0);
    c->n = n;
    return 0;
}

/* Contract: GIL held. */
void lat_call_clear(lat_call *c)
{
    Py_CLEAR(c->owned);
    Py_CLEAR(c->owned_kw);
}

/* _lateral.split_args(item, unpack=True, arg_type=None): lat_split_call for
 * Python, as (args tuple, new kwargs dict). */
PyObject *lat_split_args(PyObject *mod, PyObject *args, PyObject *kw)
{
    (void)mod;
    static char *kwlist[] = {"item", "unpack", "arg_type", NULL};
    PyObject *item, *arg_type = Py_None;
    int unpack = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|pO:split_args", kwlist, &item, &unpack,
                                     &arg_type))
        return NULL;
    if (arg_type != Py_None && !PyType_Check(arg_type)) {
        PyErr_SetString(PyExc_TypeError, "arg_type must be a class");
        return NULL;
    }
    lat_call c;
    PyObject *res = NULL;
    if (lat_split_call(item, unpack, arg_type == Py_None ? NULL : arg_type, &c) == 0) {
        PyObject *pos = PyTuple_New(c.n);
        PyObject *kwargs = c.kw ? PyDict_Copy(c.kw) : PyDict_New();
        if (pos != NULL && kwargs != NULL) {
            for (Py_ssize_t i = 0; i < c.n; i++)
                PyTuple_SET_ITEM(pos, i, Py_NewRef(c.argv[i]));
            res = PyTuple_Pack(2, pos, kwargs);
        }
        Py_XDECREF(pos);
        Py_XDECREF(kwargs);
    }
    lat_call_clear(&c);
    return res;
}

/* Calls the batch's function on one item, unpacked by lat_split_call.
 * Without fn, the item is (callable, args, kwargs). */
static PyObject *call_item(lat_batch *b, PyObject *item)
{
    if (b->fn == NULL) {
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3) {
            PyErr_SetString(PyExc_TypeError, "call items must be (fn, args, kwargs)");
            return NULL;
        }
        return call_tuple(PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1),
                          PyTuple_GET_ITEM(item, 2), b->extras);
    }
    /* lat_split_call decides by the item's type alone: a type it took for
     * a single argument once is one for good, and the items of a map are
     * mostly of one type.  Skipping it saves a sixteenth of a tiny item. */
    if ((PyObject *)Py_TYPE(item) == b->single_type)
        return lat_call_vec(b->fn, &item, 1, NULL, b->extras);
    lat_call c;
    PyObject *res = NULL;
    if (lat_split_call(item, b->unpack, b->arg_type, &c) == 0) {
        if (c.argv == &c.single)
            Py_XSETREF(b->single_type, Py_NewRef(Py_TYPE(item)));
        res = lat_call_vec(b->fn, c.argv, c.n, c.kw, b->extras);
    }
    lat_call_clear(&c);
    return res;
}

static void store_error(lat_batch *b, Py_ssize_t i)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    PyObject *key = PyLong_FromSsize_t(i);
    if (key == NULL || value == NULL || PyDict_SetItem(b->errors, key, value) < 0)
        PyErr_WriteUnraisable((PyObject *)b);
    Py_XDECREF(key);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    if (b->stop_on_error)
        b->cancelled = 1;
}

/* Item i of the batch, a new reference, or NULL with an exception set.
 * A list is used without a copy (copying millions of items costs a quarter
 * of a serial loop's time): the caller's list is read as the items run, so
 * one it shrank meanwhile has no item i any more.  Contract: GIL held. */
static PyObject *batch_item(lat_batch *b, Py_ssize_t i)
{
    if (PyTuple_CheckExact(b->items))
        return Py_NewRef(PyTuple_GET_ITEM(b->items, i));
    if (i < PyList_GET_SIZE(b->items))
        return Py_NewRef(PyList_GET_ITEM(b->items, i));
    PyErr_Format(PyExc_RuntimeError,
                 "the list of items shrank during the map: item %zd is gone", i);
    return NULL;
}

/* Runs items of the batch until none is left or it is cancelled. */
void lat_batch_run_ticket(lat_batch *b)
{
    while (!b->cancelled && b->next < b->n) {
        Py_ssize_t i = b->next++;
        PyObject *item = batch_item(b, i);
        PyObject *res = item ? call_item(b, item) : NULL;
        Py_XDECREF(item);
        /* results is exposed: a user may have shrunk it meanwhile. */
        if (res == NULL || PyList_SetItem(b->results, i, res) < 0)
            store_error(b, i);
        b->finished++;
    }
}

/* Contract: mu held. */
void lat_batch_ticket_done(lat_batch *b)
{
    if (--b->tickets > 0)
        return;
    if (b->next < b->n)
        b->cancelled = 1;
    b->done = 1;
    lat_wake(b->pool, b);
    lat_wake(b->pool, LAT_WAIT_HELP);
}

/* The list the results go into: the caller's (any list, of the items'
 * length, so it may be a list subclass the caller returns as it is), or a
 * new one of Nones. */
static PyObject *results_list(PyObject *given, Py_ssize_t n)
{
    if (given != NULL) {
        if (!PyList_Check(given) || PyList_GET_SIZE(given) != n) {
            PyErr_Format(PyExc_ValueError,
                         "results must be a list of %zd items (one per item), got %.100s",
                         n, Py_TYPE(given)->tp_name);
            return NULL;
        }
        return Py_NewRef(given);
    }
    PyObject *list = PyList_New(n);
    if (list == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        PyList_SET_ITEM(list, i, Py_NewRef(Py_None));
    return list;
}

static lat_batch *batch_create(lat_pool *pool, PyObject *fn, PyObject *items,
                               PyObject *extras, PyObject *arg_type, int unpack,
                               int stop_on_error, PyObject *results)
{
    lat_batch *b = PyObject_GC_New(lat_batch, &LatBatch_Type);
    if (b == NULL)
        return NULL;
    b->fn = Py_XNewRef(fn);
    b->items = PyList_CheckExact(items) ? Py_NewRef(items) : PySequence_Tuple(items);
    b->extras = extras ? PyDict_Copy(extras) : NULL;
    b->arg_type = Py_XNewRef(arg_type);
    b->single_type = NULL;
    b->pool = (lat_pool *)Py_NewRef(pool);
    b->errors = PyDict_New();
    b->results = NULL;
    b->weakreflist = NULL;
    b->n = b->next = b->tickets = b->finished = 0;
    b->unpack = unpack;
    b->stop_on_error = stop_on_error;
    b->cancelled = b->done = 0;
    b->callbacks = NULL;
    PyObject_GC_Track(b);
    if (b->items == NULL || b->errors == NULL || (extras && b->extras == NULL)) {
        Py_DECREF(b);
        return NULL;
    }
    b->n = Py_SIZE(b->items);
    b->results = results_list(results, b->n);
    if (b->results == NULL) {
        Py_DECREF(b);
        return NULL;
    }
    return b;
}

/* Queues the tickets.  Returns 0, or -1 with an exception set (the tickets
 * already queued still run; the rest are written off). */
static int batch_start(lat_batch *b, Py_ssize_t tickets)
{
    lat_pool *pool = b->pool;
    if (b->n == 0) {
        b->done = 1;
        return 0;
    }
    if (pool->inline_mode) {
        lat_batch_run_ticket(b);
        b->done = 1;
        return 0;
    }
    if (tickets <= 0 || tickets > pool->max_workers)
        tickets = pool->max_workers;
    if (tickets > b->n)
        tickets = b->n;
    b->tickets = tickets;
    for (Py_ssize_t k = 0; k < tickets; k++) {
        lat_item it = {.owner = Py_NewRef(b), .kind = ITEM_TICKET};
        if (lat_pool_enqueue(pool, &it) < 0) {
            lat_lock(&pool->mu);
            b->tickets -= tickets - k - 1;
            lat_batch_ticket_done(b);
            lat_unlock(&pool->mu);
            return -1;
        }
    }
    return 0;
}

PyObject *lat_pool_map(lat_pool *pool, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"fn", "items", "unpack", "extras", "arg_type",
                             "stop_on_error", "tickets", "results", NULL};
    PyObject *fn, *items, *extras = Py_None, *arg_type = Py_None, *results = Py_None;
    int unpack = 1, stop_on_error = 1;
    Py_ssize_t tickets = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|$pOOpnO:map", kwlist, &fn, &items,
                                     &unpack, &extras, &arg_type, &stop_on_error,
                                     &tickets, &results))
        return NULL;
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "fn must be callable, not %.100s",
                     Py_TYPE(fn)->tp_name);
        return NULL;
    }
    if (extras != Py_None && !PyDict_Check(extras)) {
        PyErr_Format(PyExc_TypeError, "extras must be a dict, not %.100s",
                     Py_TYPE(extras)->tp_name);
        return NULL;
    }
    if (arg_type != Py_None && !PyType_Check(arg_type)) {
        PyErr_SetString(PyExc_TypeError, "arg_type must be a class");
        return NULL;
    }
    if (lat_pool_check_usable(pool) < 0)
        return NULL;
    lat_batch *b = batch_create(pool, fn == Py_None ? NULL : fn, items,
                                extras == Py_None ? NULL : extras,
                                arg_type == Py_None ? NULL : arg_type, unpack,
                                stop_on_error, results == Py_None ? NULL : results);
    if (b == NULL)
        return NULL;
    if (batch_start(b, tickets) < 0) {
        Py_DECREF(b);
        return NULL;
    }
    return (PyObject *)b;
}

PyObject *lat_pool_call(lat_pool *pool, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"fn", "args", "kwargs", NULL};
    PyObject *fn, *fargs = NULL, *fkw = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O!O:call", kwlist, &fn,
                                     &PyTuple_Type, &fargs, &fkw))
        return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "fn must be callable, not %.100s",
                     Py_TYPE(fn)->tp_name);
        return NULL;
    }
    if (fkw != Py_None && !PyDict_Check(fkw)) {
        PyErr_SetString(PyExc_TypeError, "kwargs must be a dict or None");
        return NULL;
    }
    if (lat_pool_check_usable(pool) < 0)
        return NULL;
    PyObject *empty = fargs ? NULL : PyTuple_New(0);
    PyObject *spec = Py_BuildValue("((OOO))", fn, fargs ? fargs : empty, fkw);
    Py_XDECREF(empty);
    if (spec == NULL)
        return NULL;
    lat_batch *b = batch_create(pool, NULL, spec, NULL, NULL, 0, 1, NULL);
    Py_DECREF(spec);
    if (b == NULL)
        return NULL;
    if (batch_start(b, 1) < 0) {
        Py_DECREF(b);
        return NULL;
    }
    return (PyObject *)b;
}

/* ---- done callbacks ----------------------------------------------------- */

/* Calls each done callback once, with the batch, if the batch is done; a
 * callback's exception is reported as unraisable, like a finalizer's, and
 * an exception already set is kept.  Contract: GIL held, mu not held. */
void lat_batch_call_callbacks(lat_batch *b)
{
    if (!b->done || b->callbacks == NULL)
        return;
    /* Detached first: a callback that adds one is called at once (done). */
    PyObject *callbacks = b->callbacks;
    b->callbacks = NULL;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(callbacks); i++) {
        PyObject *fn = PyList_GET_ITEM(callbacks, i);
        PyObject *res = PyObject_CallOneArg(fn, (PyObject *)b);
        if (res == NULL)
            PyErr_WriteUnraisable(fn);
        Py_XDECREF(res);
    }
    Py_DECREF(callbacks);
    PyErr_Restore(type, value, tb);
}

/* Contract: GIL held.  The thread that finishes the batch calls the
 * callbacks after it let go of the mutex; if done already, this one does. */
static PyObject *batch_add_done_callback(lat_batch *b, PyObject *fn)
{
    if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "add_done_callback needs a callable, not %.100s",
                     Py_TYPE(fn)->tp_name);
        return NULL;
    }
    if (b->callbacks == NULL && (b->callbacks = PyList_New(0)) == NULL)
        return NULL;
    if (PyList_Append(b->callbacks, fn) < 0)
        return NULL;
    lat_batch_call_callbacks(b);
    Py_RETURN_NONE;
}

/* ---- waiting ------------------------------------------------------------ */

static int pred_done(lat_pool *pool, void *arg)
{
    (void)pool;
    return ((lat_batch *)arg)->done;
}

static int pred_done_or_work(lat_pool *pool, void *arg)
{
    return ((lat_batch *)arg)->done || pool->q.len > 0;
}

/* Returns 1 when done, 0 on timeout, -1 with an exception set.  A worker of
 * the batch's own pool runs items itself while it waits (nested maps on one
 * pool cannot deadlock). */
static int batch_wait_done(lat_batch *b, double timeout)
{
    lat_pool *pool = b->pool;
    if (pool->forked)  /* its tickets stayed in the parent: it never ends here */
        return lat_pool_check_usable(pool);
    lat_worker *w = lat_tls_worker;
    int helper = w != NULL && w->pool == pool;
    double deadline = timeout >= 0 ? lat_now() + timeout : -1;
    if (helper)
        lat_batch_run_ticket(b);
    for (;;) {
        if (helper && lat_pool_help_one(pool, w))
            continue;
        double left = deadline < 0 ? -1 : deadline - lat_now();
        if (deadline >= 0 && left < 0)
            left = 0;
        int r = helper ? lat_wait(pool, LAT_WAIT_HELP, pred_done_or_work, b, left)
                       : lat_wait(pool, b, pred_done, b, left);
        if (r <= 0 || b->done)
            return r;
    }
}

static PyObject *batch_wait(lat_batch *b, PyObject *args, PyObject *kw)
{
    double timeout;
    if (lat_parse_timeout(args, kw, "|O:wait", &timeout) < 0)
        return NULL;
    int r = b->done ? 1 : batch_wait_done(b, timeout);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}

/* The exception of the lowest failed index, or NULL (borrowed). */
static PyObject *first_error(lat_batch *b, Py_ssize_t *index)
{
    PyObject *key, *value, *best = NULL;
    Py_ssize_t pos = 0, best_i = -1;
    while (PyDict_Next(b->errors, &pos, &key, &value)) {
        Py_ssize_t i = PyLong_AsSsize_t(key);
        if (best == NULL || i < best_i) {
            best = value;
            best_i = i;
        }
    }
    *index = best_i;
    return best;
}

static PyObject *batch_result(lat_batch *b, PyObject *args, PyObject *kw)
{
    double timeout;
    if (lat_parse_timeout(args, kw, "|O:result", &timeout) < 0)
        return NULL;
    int r = b->done ? 1 : batch_wait_done(b, timeout);
    if (r < 0)
        return NULL;
    if (r == 0) {
        lat_timeout_error(PyExc_TimeoutError, "the calls", timeout, b->n - b->finished);
        return NULL;
    }
    Py_ssize_t i;
    PyObject *exc = first_error(b, &i);
    if (exc != NULL) {
        PyErr_Restore(Py_NewRef(Py_TYPE(exc)), Py_NewRef(exc), PyException_GetTraceback(exc));
        return NULL;
    }
    return Py_NewRef(b->results);
}

static PyObject *batch_cancel(lat_batch *b, PyObject *unused)
{
    (void)unused;
    Py_ssize_t unstarted = b->n - b->next;
    if (unstarted < 0 || b->done)
        unstarted = 0;
    b->cancelled = 1;
    return PyLong_FromSsize_t(unstarted);
}

static PyObject *batch_first_error_index(lat_batch *b, PyObject *unused)
{
    (void)unused;
    Py_ssize_t i;
    if (first_error(b, &i) == NULL)
        Py_RETURN_NONE;
    return PyLong_FromSsize_t(i);
}

static void batch_dealloc(lat_batch *b)
{
    PyObject_GC_UnTrack(b);
    if (b->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)b);
    Py_CLEAR(b->fn);
    Py_CLEAR(b->items);
    Py_CLEAR(b->results);
    Py_CLEAR(b->errors);
    Py_CLEAR(b->extras);
    Py_CLEAR(b->arg_type);
    Py_CLEAR(b->single_type);
    Py_CLEAR(b->callbacks);
    Py_CLEAR(b->pool);
    PyObject_GC_Del(b);
}

static int batch_traverse(lat_batch *b, visitproc visit, void *arg)
{
    Py_VISIT(b->fn);
    Py_VISIT(b->items);
    Py_VISIT(b->results);
    Py_VISIT(b->errors);
    Py_VISIT(b->extras);
    Py_VISIT(b->arg_type);
    Py_VISIT(b->single_type);
    Py_VISIT(b->callbacks);
    Py_VISIT(b->pool);
    return 0;
}

static int batch_clear(lat_batch *b)
{
    Py_CLEAR(b->fn);
    Py_CLEAR(b->results);
    Py_CLEAR(b->errors);
    Py_CLEAR(b->extras);
    Py_CLEAR(b->arg_type);
    Py_CLEAR(b->single_type);
    Py_CLEAR(b->callbacks);
    return 0;
}

static PyObject *batch_get_results(lat_batch *b, void *c) { (void)c; return Py_NewRef(b->results ? b->results : Py_None); }
static PyObject *batch_get_errors(lat_batch *b, void *c) { (void)c; return Py_NewRef(b->errors ? b->errors : Py_None); }
static PyObject *batch_get_items(lat_batch *b, void *c) { (void)c; return b->items ? PySequence_List(b->items) : Py_NewRef(Py_None); }
static PyObject *batch_get_done(lat_batch *b, void *c) { (void)c; return PyBool_FromLong(b->done); }
/* True only when some item was skipped, not merely because one failed. */
static PyObject *batch_get_cancelled(lat_batch *b, void *c)
{
    (void)c;
    return PyBool_FromLong(b->cancelled && b->next < b->n);
}
static PyObject *batch_get_started(lat_batch *b, void *c) { (void)c; return PyLong_FromSsize_t(b->next); }
static PyObject *batch_get_finished(lat_batch *b, void *c) { (void)c; return PyLong_FromSsize_t(b->finished); }

static Py_ssize_t batch_len(lat_batch *b) { return b->n; }

static PyGetSetDef batch_getset[] = {
    {"results", (getter)batch_get_results, NULL, "One slot per item: its return value, or None.", NULL},
    {"errors", (getter)batch_get_errors, NULL, "Dict of item index -> exception.", NULL},
    {"items", (getter)batch_get_items, NULL, "The items, as a list.", NULL},
    {"done", (getter)batch_get_done, NULL, "True when no call is running or left.", NULL},
    {"cancelled", (getter)batch_get_cancelled, NULL, "True if unstarted items were skipped.", NULL},
    {"started", (getter)batch_get_started, NULL, "Items claimed by a worker.", NULL},
    {"finished", (getter)batch_get_finished, NULL, "Items whose call returned or raised.", NULL},
    {NULL}
};

static PyMethodDef batch_methods[] = {
    {"wait", (PyCFunction)(void (*)(void))batch_wait, METH_VARARGS | METH_KEYWORDS,
     "wait(timeout=None)\n--\n\nBlock until done; False if the timeout ran out."},
    {"result", (PyCFunction)(void (*)(void))batch_result, METH_VARARGS | METH_KEYWORDS,
     "result(timeout=None)\n--\n\nThe results list, or raise the error of the lowest "
     "failed index (TimeoutError if not done in time)."},
    {"cancel", (PyCFunction)batch_cancel, METH_NOARGS,
     "cancel()\n--\n\nSkip the items not started; return how many."},
    {"first_error_index", (PyCFunction)batch_first_error_index, METH_NOARGS,
     "first_error_index()\n--\n\nLowest failed index, or None."},
    {"add_done_callback", (PyCFunction)batch_add_done_callback, METH_O,
     "add_done_callback(fn)\n--\n\nCall fn(batch) once the batch is done, in the thread "
     "that finishes it (at once if done); an exception it raises is reported as "
     "unraisable."},
    {NULL}
};

static PySequenceMethods batch_as_sequence = {.sq_length = (lenfunc)batch_len};

PyTypeObject LatBatch_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_lateral.Batch",
    .tp_basicsize = sizeof(lat_batch),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Calls started by Pool.map() or Pool.call(), with ordered result slots.",
    .tp_dealloc = (destructor)batch_dealloc,
    .tp_weaklistoffset = offsetof(lat_batch, weakreflist),
    .tp_traverse = (traverseproc)batch_traverse,
    .tp_clear = (inquiry)batch_clear,
    .tp_methods = batch_methods,
    .tp_getset = batch_getset,
    .tp_as_sequence = &batch_as_sequence,
};
