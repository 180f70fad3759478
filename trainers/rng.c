/* rng.c - the out-of-line parts of rng.h. */
#include "trainers/rng.h"

#include <math.h>

double pd_rng_normal(struct pd_rng *r)
{
    double u1 = pd_rng_uniform(r), u2 = pd_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}
