/* A C peer for the System V tests: meets a Rust process (the library's tests) or the
 * shmkit CLI (the CLI's tests) in one segment. WHO is "rust" or "shell": the text the
 * other side writes.
 *
 *   sysv_peer ftok PATH PROJ WHO   opens the segment ftok(PATH, PROJ) names, waits until
 *                                  the u32 at offset 0 is 1, checks the C string at 8 is
 *                                  "from WHO", writes "from c" at 64, sets the word to 2.
 *   sysv_peer private WHO          creates an IPC_PRIVATE segment of 4096 bytes, prints
 *                                  its id, writes "hello from c" at 8, sets the word to 1,
 *                                  waits until it is 2, checks "reply from WHO" at 64,
 *                                  removes it.
 *
 * Waiting sleeps in FUTEX_WAIT on the word (shared, never FUTEX_PRIVATE_FLAG: the other
 * side is another process) with a 10 s deadline; every store to the word is followed by
 * FUTEX_WAKE. The other side wakes the word after its stores too (the library's tests
 * with futex::wake_all, the CLI's `shmkit write --as u32` at an aligned offset). Exit
 * codes name the step that failed. */
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static struct timespec deadline_in(time_t secs) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += secs;
    return ts;
}

/* Time left until `end`, or -1 once it has passed. */
static int time_left(const struct timespec *end, struct timespec *left) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ns = (end->tv_sec - now.tv_sec) * 1000000000LL + (end->tv_nsec - now.tv_nsec);
    if (ns <= 0) return -1;
    left->tv_sec = ns / 1000000000LL;
    left->tv_nsec = ns % 1000000000LL;
    return 0;
}

static int wait_word(_Atomic unsigned *w, unsigned want) {
    struct timespec end = deadline_in(10), left;
    for (;;) {
        unsigned now = atomic_load_explicit(w, memory_order_acquire);
        if (now == want) return 0;
        if (time_left(&end, &left)) return -1;
        /* Sleeps only while the word still holds `now`; EAGAIN (it changed), EINTR and
         * ETIMEDOUT all lead back to the check above. */
        if (syscall(SYS_futex, w, FUTEX_WAIT, now, &left, NULL, 0) == -1 && errno != EAGAIN
            && errno != EINTR && errno != ETIMEDOUT) {
            perror("futex wait");
            return -1;
        }
    }
}

static void set_word(_Atomic unsigned *w, unsigned v) {
    atomic_store_explicit(w, v, memory_order_release);
    syscall(SYS_futex, w, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

int main(int argc, char **argv) {
    char expect[64];
    if (argc == 5 && strcmp(argv[1], "ftok") == 0) {
        snprintf(expect, sizeof expect, "from %s", argv[4]);
        key_t key = ftok(argv[2], atoi(argv[3]));
        if (key == -1) { perror("ftok"); return 10; }
        int id = shmget(key, 0, 0);
        if (id < 0) { perror("shmget"); return 11; }
        char *p = shmat(id, NULL, 0);
        if (p == (void *)-1) { perror("shmat"); return 12; }
        _Atomic unsigned *word = (_Atomic unsigned *)p;
        if (wait_word(word, 1)) { fprintf(stderr, "timed out waiting for 1\n"); return 13; }
        if (strcmp(p + 8, expect) != 0) { fprintf(stderr, "got '%.20s'\n", p + 8); return 14; }
        strcpy(p + 64, "from c");
        set_word(word, 2);
        shmdt(p);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "private") == 0) {
        snprintf(expect, sizeof expect, "reply from %s", argv[2]);
        int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        if (id < 0) { perror("shmget"); return 20; }
        char *p = shmat(id, NULL, 0);
        if (p == (void *)-1) { perror("shmat"); shmctl(id, IPC_RMID, NULL); return 21; }
        _Atomic unsigned *word = (_Atomic unsigned *)p;
        strcpy(p + 8, "hello from c");
        set_word(word, 1);
        printf("%d\n", id);
        fflush(stdout);
        int rc = 0;
        if (wait_word(word, 2)) { fprintf(stderr, "timed out waiting for 2\n"); rc = 22; }
        else if (strcmp(p + 64, expect) != 0) { fprintf(stderr, "got '%.20s'\n", p + 64); rc = 23; }
        shmdt(p);
        shmctl(id, IPC_RMID, NULL);
        return rc;
    }
    fprintf(stderr, "usage: sysv_peer ftok PATH PROJ WHO | sysv_peer private WHO\n");
    return 2;
}
