/* lock.c: the slow paths of lock.h, where a thread asks the kernel to sleep
 * or to wake another.  Nothing here touches Python objects. */
#include "lateral.h"
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Returns when *addr no longer holds `expected`, when woken, or on a
 * signal: the caller re-checks what it waits for. */
void lat_futex_wait(void *addr, unsigned expected)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void lat_futex_wake(void *addr, int count)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

/* Takes m, sleeping while another thread holds it; leaves it in state 2
 * (maybe waited for), so the unlock wakes a sleeper if there is one.
 * Contract: m not held by this thread. */
void lat_lock_contended(lat_mutex *m)
{
    while (atomic_exchange_explicit(&m->state, 2, memory_order_acquire) != 0)
        lat_futex_wait(&m->state, 2);
}
