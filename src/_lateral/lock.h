/* lock.h: the pool mutex and the workers' condition variable, on futexes.
 *
 * glibc's pthread mutex costs ~55 instructions a lock and unlock on its fast
 * path (it checks its kind, robustness and lock elision each time); a
 * fire-and-forget task takes mu twice, once on each side, and the whole
 * task costs ~1,000.  This lock is one compare-and-swap in and one
 * exchange out when uncontended, as CPython 3.13's PyMutex is.  It is the
 * classic three-state futex mutex ("Futexes Are Tricky", Drepper):
 * 0 unlocked, 1 locked, 2 locked and maybe waited for.
 *
 * The condition variable is a sequence number: a waiter reads it with mu
 * held, unlocks and sleeps only while it is unchanged, so a signal sent
 * after the waiter's check of its predicate is never lost.  Waits may wake
 * spuriously (signals, races): callers loop on their predicate, as they
 * must with pthread_cond_wait.  Linux only, as lateral is.
 */
#ifndef LATERAL_LOCK_H
#define LATERAL_LOCK_H

#include <limits.h>
#include <stdatomic.h>

typedef struct { atomic_int state; } lat_mutex;
typedef struct { atomic_uint seq; } lat_cond;

#define LAT_MUTEX_INIT {0}
#define LAT_COND_INIT {0}

void lat_futex_wait(void *addr, unsigned expected);
void lat_futex_wake(void *addr, int count);
void lat_lock_contended(lat_mutex *m);

/* Contract: m not held by this thread. */
static inline void lat_lock(lat_mutex *m)
{
    int unlocked = 0;
    if (!atomic_compare_exchange_strong_explicit(&m->state, &unlocked, 1,
                                                 memory_order_acquire,
                                                 memory_order_relaxed))
        lat_lock_contended(m);
}

/* Returns 1 with m locked, or 0 if another thread holds it. */
static inline int lat_trylock(lat_mutex *m)
{
    int unlocked = 0;
    return atomic_compare_exchange_strong_explicit(&m->state, &unlocked, 1,
                                                   memory_order_acquire,
                                                   memory_order_relaxed);
}

/* Contract: m held by this thread. */
static inline void lat_unlock(lat_mutex *m)
{
    if (atomic_exchange_explicit(&m->state, 0, memory_order_release) == 2)
        lat_futex_wake(&m->state, 1);
}

/* Sleeps until signalled (or spuriously), with m released meanwhile.
 * Contract: m held by this thread, and held again on return. */
static inline void lat_cond_wait(lat_cond *cv, lat_mutex *m)
{
    unsigned seq = atomic_load_explicit(&cv->seq, memory_order_relaxed);
    lat_unlock(m);
    lat_futex_wait(&cv->seq, seq);
    /* Several threads may wake at once (broadcast): mark mu contended so
     * that each unlock wakes the next of them. */
    lat_lock_contended(m);
}

/* Wakes one waiter, or all.  mu may or may not be held. */
static inline void lat_cond_signal(lat_cond *cv)
{
    atomic_fetch_add_explicit(&cv->seq, 1, memory_order_release);
    lat_futex_wake(&cv->seq, 1);
}

static inline void lat_cond_broadcast(lat_cond *cv)
{
    atomic_fetch_add_explicit(&cv->seq, 1, memory_order_release);
    lat_futex_wake(&cv->seq, INT_MAX);
}

#endif
