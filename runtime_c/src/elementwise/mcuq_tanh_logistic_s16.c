/* LOGISTIC and TANH, int16 (16x8 mode): TFLite's reference_integer_ops::Logistic and Tanh for int16, which
 * interpolate one table of sigmoid(i / 24), i in [0, 256), in unsigned 0.16 fixed point (TFLite's
 * sigmoid_table_uint16; mcuq/lower/lut16.py holds the same values); see mcuq_elementwise.h. */
#include "mcuq_elementwise.h"

static const uint16_t sigmoid_table[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535};

/* MCUQ_ERR_ARGUMENT for a NULL pointer, a negative size, a shift outside [0, 31] or a multiplier for which
 * x * multiplier + round could leave int32 (at most 65535 with no shift, 32767 with one). */
static mcuq_status check(const mcuq_tanh_logistic_s16_params *p, const int16_t *input, const int16_t *output)
{
    if (p == NULL || input == NULL || output == NULL || p->size < 0 || p->input_left_shift < 0 ||
        p->input_left_shift > 31 || p->input_multiplier < 1 ||
        p->input_multiplier > (p->input_left_shift == 0 ? 65535 : 32767)) {
        return MCUQ_ERR_ARGUMENT;
    }
    return MCUQ_OK;
}

/* (x * multiplier + round) >> shift: the input on the table's grid, |result| < 2^31. */
static int32_t rescale(const mcuq_tanh_logistic_s16_params *p, int16_t x)
{
    const int32_t shift = p->input_left_shift;
    const int32_t round = shift > 0 ? (int32_t)(UINT32_C(1) << (shift - 1)) : 0;
    /* No overflow: |x| <= 32768 and the multiplier's bound (check) keep x * multiplier + round inside int32.
     * Arithmetic right shift of a negative value: implementation-defined in C99, arithmetic in GCC and Clang. */
    return (x * p->input_multiplier + round) >> shift;
}

mcuq_status mcuq_logistic_s16(const mcuq_tanh_logistic_s16_params *params, const int16_t *input, int16_t *output)
{
    const mcuq_status status = check(params, input, output);
    if (status != MCUQ_OK) {
        return status;
    }
    for (int32_t i = 0; i < params->size; ++i) {
        const int32_t x = rescale(params, input[i]);
        const uint32_t ax = x >= 0 ? (uint32_t)x : 0u - (uint32_t)x;
        const uint32_t uh = ax >> 9; /* 9 fraction bits: 7 of the table step and 2 of the 3/4 range scaling */
        uint32_t result = UINT32_C(0x7FFF) << 10;
        if (uh < 255u) {
            const uint32_t ua = sigmoid_table[uh];
            const uint32_t ub = sigmoid_table[uh + 1u];
            result = (ua << 9) + (ax & 0x1FFu) * (ub - ua);
        }
        result = x >= 0 ? result + (UINT32_C(1) << 9) : (UINT32_C(1) << 25) - result + (UINT32_C(1) << 9) - 1u;
        output[i] = (int16_t)(result >> 10); /* in [0, 32767] */
    }
    return MCUQ_OK;
}

mcuq_status mcuq_tanh_s16(const mcuq_tanh_logistic_s16_params *params, const int16_t *input, int16_t *output)
{
    const mcuq_status status = check(params, input, output);
    if (status != MCUQ_OK) {
        return status;
    }
    for (int32_t i = 0; i < params->size; ++i) {
        const int32_t x = rescale(params, input[i]);
        const uint32_t ax = x >= 0 ? (uint32_t)x : 0u - (uint32_t)x;
        const uint32_t uh = ax >> 8; /* tanh(x) = 2 sigmoid(2x) - 1: the table at twice the rate */
        int32_t result = (int32_t)(UINT32_C(0xFFFF) << 8);
        if (uh < 255u) {
            const uint32_t ua = sigmoid_table[uh];
            const uint32_t ub = sigmoid_table[uh + 1u];
            result = (int32_t)((ua << 8) + (ax & 0xFFu) * (ub - ua)); /* below 2^24 */
        }
        result = x >= 0 ? result - (INT32_C(1) << 23) + (INT32_C(1) << 7)
                        : -result + (INT32_C(1) << 23) + (INT32_C(1) << 7) - 1;
        /* Arithmetic right shift of a negative value: implementation-defined in C99, arithmetic in GCC and Clang. */
        output[i] = (int16_t)(result >> 8); /* in [-32768, 32767] */
    }
    return MCUQ_OK;
}
