/* queue.c: the FIFO of pending items, a growable ring buffer.
 *
 * Locking contract: every function here is called with pool->mu held (or on
 * a queue no other thread can see).  Nothing here touches Python objects, so
 * the GIL is not needed; memory comes from PyMem_Raw*, which is thread-safe.
 */
#include "lateral.h"
#include <string.h>

#define QUEUE_MIN_CAP 64

static int queue_grow(lat_queue *q)
{
    size_t cap = q->cap ? q->cap * 2 : QUEUE_MIN_CAP;
    if (cap < q->cap || cap > ((size_t)-1) / sizeof(lat_item))
        return -1;
    lat_item *buf = PyMem_RawMalloc(cap * sizeof(lat_item));
    if (buf == NULL)
        return -1;
    /* Unwrap the ring so the items start at index 0 of the new buffer. */
    size_t first = q->cap - q->head;
    if (first > q->len)
        first = q->len;
    if (q->len) {
        memcpy(buf, q->buf + q->head, first * sizeof(lat_item));
        memcpy(buf + first, q->buf, (q->len - first) * sizeof(lat_item));
    }
    PyMem_RawFree(q->buf);
    q->buf = buf;
    q->cap = cap;
    q->head = 0;
    return 0;
}

/* Returns 0, or -1 when memory ran out (no Python error is set). */
int lat_queue_push(lat_queue *q, const lat_item *it)
{
    if (q->len == q->cap && queue_grow(q) < 0)
        return -1;
    q->buf[(q->head + q->len) % q->cap] = *it;
    q->len++;
    return 0;
}

/* Returns 1 and fills *out with the oldest item, or 0 when empty. */
int lat_queue_pop(lat_queue *q, lat_item *out)
{
    if (q->len == 0)
        return 0;
    *out = q->buf[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return 1;
}

/* Returns 1 and fills *out with the newest item, or 0 when empty. */
int lat_queue_pop_tail(lat_queue *q, lat_item *out)
{
    if (q->len == 0)
        return 0;
    q->len--;
    *out = q->buf[(q->head + q->len) % q->cap];
    return 1;
}

/* Moves every item into an empty queue `into`, leaving q empty. */
void lat_queue_take_all(lat_queue *q, lat_queue *into)
{
    *into = *q;
    q->buf = NULL;
    q->cap = q->head = q->len = 0;
}

void lat_queue_free(lat_queue *q)
{
    PyMem_RawFree(q->buf);
    q->buf = NULL;
    q->cap = q->head = q->len = 0;
}
