/* queue.c: the FIFO of pending items, a list of fixed-size blocks.
 *
 * Blocks, not one growable ring: a ring that doubles copies every queued
 * item while the pool mutex is held, stalling every worker for as long
 * as a million-item copy takes.  A block is never moved; the one the head
 * leaves is kept as a spare, so a queue that stays short allocates nothing.
 *
 * Locking contract: every function here is called with pool->mu held (or on
 * a queue no other thread can see).  Nothing here touches Python objects, so
 * the GIL is not needed; memory comes from PyMem_Raw*, which is thread-safe.
 */
#include "lateral.h"

struct lat_block {
    struct lat_block *next;
    lat_item items[LAT_BLOCK_ITEMS];
};

/* Contract: as the file's.  Returns a block, or NULL when memory ran out. */
static lat_block *block_new(lat_queue *q)
{
    lat_block *b = q->spare;
    if (b != NULL)
        q->spare = NULL;
    else if ((b = PyMem_RawMalloc(sizeof *b)) == NULL)
        return NULL;
    b->next = NULL;
    return b;
}

/* Keeps one emptied block for the next push, frees the others. */
static void block_retire(lat_queue *q, lat_block *b)
{
    if (q->spare == NULL)
        q->spare = b;
    else
        PyMem_RawFree(b);
}

/* Returns 0, or -1 when memory ran out (no Python error is set). */
int lat_queue_push(lat_queue *q, const lat_item *it)
{
    if (q->tail == NULL || q->tail_i == LAT_BLOCK_ITEMS) {
        lat_block *b = block_new(q);
        if (b == NULL)
            return -1;
        if (q->tail == NULL)
            q->head = b;
        else
            q->tail->next = b;
        q->tail = b;
        q->tail_i = 0;
    }
    q->tail->items[q->tail_i++] = *it;
    q->len++;
    return 0;
}

/* Returns 1 and fills *out with the oldest item, or 0 when empty. */
int lat_queue_pop(lat_queue *q, lat_item *out)
{
    if (q->len == 0)
        return 0;
    *out = q->head->items[q->head_i++];
    if (--q->len == 0) {
        /* Empty: start the same block over rather than leave it. */
        q->head_i = q->tail_i = 0;
    } else if (q->head_i == LAT_BLOCK_ITEMS) {
        lat_block *done = q->head;
        q->head = done->next;
        q->head_i = 0;
        block_retire(q, done);
    }
    return 1;
}

/* Returns 1 and fills *out with the newest item, or 0 when empty.  Rare
 * (a thread that failed to start), so finding the block before the tail
 * by walking from the head is fine. */
int lat_queue_pop_tail(lat_queue *q, lat_item *out)
{
    if (q->len == 0)
        return 0;
    *out = q->tail->items[--q->tail_i];
    if (--q->len == 0) {
        q->head_i = q->tail_i = 0;
    } else if (q->tail_i == 0) {
        lat_block *prev = q->head;
        while (prev->next != q->tail)
            prev = prev->next;
        block_retire(q, q->tail);
        prev->next = NULL;
        q->tail = prev;
        q->tail_i = LAT_BLOCK_ITEMS;
    }
    return 1;
}

/* Calls fn(it, arg) on every item, oldest first. */
void lat_queue_each(const lat_queue *q, void (*fn)(const lat_item *, void *), void *arg)
{
    size_t i = q->head_i;
    size_t left = q->len;
    for (const lat_block *b = q->head; left > 0; b = b->next, i = 0) {
        for (; i < LAT_BLOCK_ITEMS && left > 0; i++, left--)
            fn(&b->items[i], arg);
    }
}

/* Moves every item into `into`, which must be empty, leaving q empty. */
void lat_queue_take_all(lat_queue *q, lat_queue *into)
{
    *into = *q;
    into->spare = NULL;  /* q keeps its spare */
    if (q->len == 0) {
        /* Its one block, if any, stays with q too. */
        *into = (lat_queue){0};
        return;
    }
    q->head = q->tail = NULL;
    q->head_i = q->tail_i = q->len = 0;
}

void lat_queue_free(lat_queue *q)
{
    lat_block *b = q->head;
    while (b != NULL) {
        lat_block *next = b->next;
        PyMem_RawFree(b);
        b = next;
    }
    PyMem_RawFree(q->spare);
    *q = (lat_queue){0};
}
