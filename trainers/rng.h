/*
 * rng.h - the one pseudo-random generator of the trainers (xoshiro256**,
 * seeded through splitmix64), so that a seed means the same thing in every
 * family and results repeat for a given seed and thread count.
 *
 * A generator is a plain value; give each thread or tree its own, derived
 * with pd_rng_seed(&r, seed ^ stream_id) or pd_rng_split.
 */
#ifndef PODIUM_TRAINERS_RNG_H
#define PODIUM_TRAINERS_RNG_H

#include <stdint.h>

struct pd_rng { uint64_t s[4]; };

static inline uint64_t pd_rng_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void pd_rng_seed(struct pd_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = pd_rng_splitmix(&seed);
}

static inline uint64_t pd_rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t pd_rng_next(struct pd_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = pd_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = pd_rng_rotl(s[3], 45);
    return out;
}

/* Uniform double in [0, 1). */
static inline double pd_rng_uniform(struct pd_rng *r)
{
    return (double)(pd_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n > 0, without modulo bias. */
static inline uint64_t pd_rng_below(struct pd_rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = pd_rng_next(r); while (x >= limit);
    return x % n;
}

/* Standard normal (Box-Muller; one value per call, simple over fast). */
double pd_rng_normal(struct pd_rng *r);

/* A new independent generator derived from r (advances r). */
static inline struct pd_rng pd_rng_split(struct pd_rng *r)
{
    struct pd_rng c;
    pd_rng_seed(&c, pd_rng_next(r));
    return c;
}

#endif
