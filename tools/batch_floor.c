/* The floor of issue 3's batch path on a machine: what plain C does per payment with only
   the work the target names (id resolution, idempotency) plus one balance update, a payment
   record and a ledger entry; no rules, tables sized ahead (no growth), a prefetch pipeline
   as core/_batch.pyx has. An optimistic bound for a rewrite, not a model of the engine
   (docs/throughput.md).

       gcc -O2 -march=native -o /tmp/batch_floor tools/batch_floor.c
       /tmp/batch_floor MEMBERS PAYMENTS [warm]

   MEMBERS known shoppers (ids: 24-byte packed records, 4-byte slots holding the number);
   PAYMENTS by shoppers drawn at random among them, each with a new transaction id
   (24-byte records, 8-byte slots: hash tag | number). Every table and column is touched
   before the timed loop, as the engine's are when made, except the payment records, the
   ledger and the id arena the loop appends to, which `warm` touches too (an engine whose
   memory was freed and reused). Prints payments/s and the kernel's share of the loop. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline uint64_t mum(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t hash24(const unsigned char* p) {  /* core/_keyhash.pxd's, for 24 bytes */
    uint64_t h = mum(24 ^ 0xa0761d6478bd642full, 0xe7037ed1a0b428dbull), w;
    for (int i = 0; i < 3; i++) {
        memcpy(&w, p + 8 * i, 8);
        h = mum(w ^ 0x8ebc6af09c88c6e3ull, h ^ 0x589965cc75374cc3ull);
    }
    h = mum(0x1d8e4e27c47d124full, h ^ 0xa0761d6478bd642full);  /* no tail: w = 0, n = 0 */
    return mum(h, 0xe7037ed1a0b428dbull) ^ h;
}

static inline size_t home(uint64_t h, size_t cap) { return (size_t)(((h >> 32) * cap) >> 32); }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double kernel_s(void) {
    struct rusage u;
    getrusage(RUSAGE_THREAD, &u);
    return u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

static uint64_t state = 88172645463325252ull;  /* xorshift64, fixed seed: a pure function */
static inline uint64_t draw(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

typedef struct { int64_t pts; uint32_t idx; int32_t acct; int32_t t; uint8_t kind, bucket, tag, pad; } LRow;
typedef struct { int32_t acct, prog, t, total, basis, pts, refunded, reversed, pending; } PRec;

static void* need(size_t bytes) {
    void* p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "batch_floor: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

static int count(const char* s, size_t* out) {
    char* end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s < '1' || *s > '9' || *end || v > 2000000000ull) return 0;
    *out = (size_t)v;
    return 1;
}

int main(int argc, char** argv) {
    size_t M, N;
    if (argc < 3 || argc > 4 || !count(argv[1], &M) || !count(argv[2], &N)
        || (argc == 4 && strcmp(argv[3], "warm"))) {
        fprintf(stderr, "usage: batch_floor MEMBERS PAYMENTS [warm]  (counts 1 .. 2e9)\n");
        return 2;
    }
    int warm = argc == 4;
    size_t mcap = M * 5 / 4 + 16, pcap = N * 5 / 4 + 16;
    uint32_t* mslots = need(mcap * 4);
    unsigned char* mkeys = need(M * 24);
    memset(mslots, 0, mcap * 4);
    for (size_t i = 0; i < M; i++) {
        unsigned char* k = mkeys + 24 * i;
        for (int j = 0; j < 3; j++) {
            uint64_t w = draw();
            memcpy(k + 8 * j, &w, 8);
        }
        memset(k + 21, 0, 3);  /* 28 characters packed: 21 bytes */
        size_t s = home(hash24(k), mcap);
        while (mslots[s]) s = s + 1 == mcap ? 0 : s + 1;
        mslots[s] = (uint32_t)(i + 1);
    }
    int32_t* bal = need(M * 4);
    int32_t* qual = need(M * 4);
    int8_t* member = need(M);
    memset(bal, 0, M * 4);
    memset(qual, 0, M * 4);
    for (size_t i = 0; i < M; i++) member[i] = (int8_t)(draw() % 5 == 0);
    unsigned char* tx = need(N * 24);
    unsigned char* op = need(N * 24);
    int32_t* total = need(N * 4);
    for (size_t i = 0; i < N; i++) {
        uint64_t w = 4200000000000000000ull + i;
        memset(tx + 24 * i, 0, 24);
        memcpy(tx + 24 * i, &w, 8);
        memcpy(op + 24 * i, mkeys + 24 * (draw() % M), 24);
        total[i] = (int32_t)(100 + draw() % 5000);
    }
    uint64_t* pslots = need(pcap * 8);
    unsigned char* pkeys = need(N * 24);
    LRow* ledger = need(N * sizeof(LRow));
    PRec* recs = need(N * sizeof(PRec));
    memset(pslots, 0, pcap * 8);
    if (warm) {
        memset(pkeys, 1, N * 24);
        memset(ledger, 1, N * sizeof(LRow));
        memset(recs, 1, N * sizeof(PRec));
    }
    enum { AHEAD = 16, RING = 32 };
    uint64_t htx[RING], hop[RING];
    size_t n = 0;
    long dup = 0, unknown = 0;
    int64_t points = 0;
    double k0 = kernel_s(), t0 = now();
    for (long i = -AHEAD; i < (long)N; i++) {
        long j = i + AHEAD;
        if (j < (long)N) {  /* stage 1: hash both ids, touch their slots */
            htx[j % RING] = hash24(tx + 24 * j);
            hop[j % RING] = hash24(op + 24 * j);
            __builtin_prefetch(pslots + home(htx[j % RING], pcap));
            __builtin_prefetch(mslots + home(hop[j % RING], mcap));
        }
        j = i + AHEAD / 2;
        if (j >= 0 && j < (long)N) {  /* stage 2: the shopper's key and columns */
            uint32_t c = mslots[home(hop[j % RING], mcap)];
            if (c) {
                __builtin_prefetch(mkeys + 24 * (c - 1));
                __builtin_prefetch(bal + c - 1);
                __builtin_prefetch(qual + c - 1);
                __builtin_prefetch(member + c - 1);
            }
        }
        if (i < 0) continue;
        const unsigned char* t = tx + 24 * i;
        const unsigned char* o = op + 24 * i;
        uint64_t h = htx[i % RING];
        uint64_t tag = ((uint64_t)((uint32_t)h | 1)) << 32;
        size_t s = home(h, pcap);
        int seen = 0;
        for (; pslots[s]; s = s + 1 == pcap ? 0 : s + 1) {  /* idempotency */
            if ((pslots[s] & 0xFFFFFFFF00000000ull) == tag
                && !memcmp(pkeys + 24 * (uint32_t)pslots[s], t, 24)) {
                seen = 1;
                break;
            }
        }
        if (seen) {
            dup++;
            continue;
        }
        long a = -1;
        for (size_t ms = home(hop[i % RING], mcap); mslots[ms]; ms = ms + 1 == mcap ? 0 : ms + 1) {
            if (!memcmp(mkeys + 24 * (mslots[ms] - 1), o, 24)) {  /* the shopper */
                a = mslots[ms] - 1;
                break;
            }
        }
        if (a < 0) {
            unknown++;
            continue;
        }
        memcpy(pkeys + 24 * n, t, 24);
        pslots[s] = tag | n;
        int32_t pts = total[i] / 100 * (member[a] ? 2 : 1);
        bal[a] += pts;
        qual[a] += pts;
        points += pts;
        ledger[n] = (LRow){pts, (uint32_t)n, (int32_t)a, (int32_t)i, 1, member[a] ? 0 : 2, 0, 0};
        recs[n] = (PRec){(int32_t)a, 0, (int32_t)i, total[i], total[i], pts, 0, 0, 0};
        n++;
    }
    double spent = now() - t0, kernel = kernel_s() - k0;
    int64_t held = 0;
    for (size_t i = 0; i < M; i++) held += bal[i];
    printf("batch floor: %zu members, %zu payments%s: %.0f payments/s, %.0f%% in the kernel; "
           "applied %zu, duplicates %ld, unknown %ld, balances %s\n",
           M, N, warm ? " (appended memory warm)" : "", N / spent,
           spent > 0 ? 100 * (kernel < spent ? kernel : spent) / spent : 0.0, n, dup, unknown,
           held == points ? "ok" : "WRONG");
    return held == points && n + dup + unknown == N ? 0 : 1;
}
