/* wheel.c — the constant tables of the mod-30 wheel (see wheel.h). Computed by the
 * preprocessor from WHEEL_M/WHEEL_BIT so that they are const data, never built at run time. */
#include "wheel.h"

const uint8_t wheel_residue[8] = {1, 7, 11, 13, 17, 19, 23, 29};

const int8_t wheel_bit_of[30] = {
    -1, 0,  -1, -1, -1, -1, -1, 1,  -1, -1, -1, 2,  -1, 3,  -1,
    -1, -1, 4,  -1, 5,  -1, -1, -1, 6,  -1, -1, -1, -1, -1, 7,
};

const uint8_t wheel_next_index[30] = {
    0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7,
};

#define STEP(r, i)                                                                                 \
    {                                                                                              \
        (uint8_t) ~(1u << WHEEL_BIT((WHEEL_M(r) * WHEEL_M(i)) % 30)),                              \
            WHEEL_M((i) + 1) - WHEEL_M(i),                                                         \
            (WHEEL_M(r) * WHEEL_M((i) + 1)) / 30 - (WHEEL_M(r) * WHEEL_M(i)) / 30                  \
    }
#define ROW(r)                                                                                     \
    {                                                                                              \
        STEP(r, 0), STEP(r, 1), STEP(r, 2), STEP(r, 3), STEP(r, 4), STEP(r, 5), STEP(r, 6),        \
            STEP(r, 7)                                                                             \
    }

const struct wheel_step wheel_steps[8][8] = {ROW(0), ROW(1), ROW(2), ROW(3),
                                             ROW(4), ROW(5), ROW(6), ROW(7)};
