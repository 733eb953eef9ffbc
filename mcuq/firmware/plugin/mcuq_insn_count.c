/* mcuq_insn_count.c: a QEMU TCG plugin that counts executed guest instructions exactly and records the count
 * each time the guest enters one of up to 16 marker functions.
 *
 * Usage (QEMU 7.2; options are name=value pairs after the plugin's file name):
 *   qemu-system-arm ... -plugin file=libmcuq_insn_count.so,out=EVENTS.txt,mark0=0x1234,mark2=0x1301,...
 * out=PATH      where to write the events when QEMU exits (required)
 * markN=ADDR    address of marker N (0 <= N < 16; hex with 0x or decimal); the Thumb bit is cleared.
 *
 * Output (text, written at exit): a line "mcuq-insn-count 1", then one line "event N COUNT" per marker entry in
 * execution order, then "total COUNT" (every instruction the guest executed).
 *
 * Exactness: every translated instruction gets an inline 64-bit add of 1 (not one add per translation block,
 * which over-counts when a block exits early, e.g. on a fault or an exception). In QEMU 7.2 an instruction's
 * exec callbacks are generated before its inline operations (plugin_gen_empty_callback emits the udata
 * callback, then the inline op), so COUNT in an event is the number of instructions executed *before* the
 * marker's first instruction. The difference between two events is therefore exactly the instructions from the
 * first marker's entry up to, not including, the second marker's entry. Instructions skipped by a failed
 * condition (IT blocks) count, as they do on the core; an instruction that faults counts once. One vCPU is
 * assumed (Cortex-M). tests/qemu/test_profile.py checks every event and the total against QEMU's own
 * single-step trace (-singlestep -d exec,nochain: one logged block per executed instruction).
 *
 * QEMU 7.2 passes each option other than file= to the plugin as the string "name=value" (the deprecated
 * arg=VALUE form passes just VALUE, which this plugin rejects). The events file is written from the atexit
 * callback, which runs when the guest exits through semihosting; a QEMU that is killed writes nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu-plugin.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_MARKS 16

typedef struct {
    uint32_t mark;
    uint64_t count;
} event_t;

static uint64_t insn_count;
static uint64_t mark_addr[MAX_MARKS];
static int mark_used[MAX_MARKS];
static char *out_path;
static event_t *events;
static size_t n_events, cap_events;
static int out_of_memory;

static void on_mark(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    if (n_events == cap_events) {
        size_t cap = cap_events ? 2 * cap_events : 4096;
        event_t *grown = realloc(events, cap * sizeof(*events));
        if (grown == NULL) {
            out_of_memory = 1;
            return;
        }
        events = grown;
        cap_events = cap;
    }
    events[n_events].mark = (uint32_t)(uintptr_t)userdata;
    events[n_events].count = insn_count;
    n_events++;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        for (int m = 0; m < MAX_MARKS; m++) {
            if (mark_used[m] && mark_addr[m] == vaddr) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS,
                                                       (void *)(uintptr_t)m);
            }
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count, 1);
    }
}

static void write_events(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    FILE *f = fopen(out_path, "w");
    if (f == NULL) {
        fprintf(stderr, "mcuq_insn_count: cannot open %s for writing\n", out_path);
        return;
    }
    fprintf(f, "mcuq-insn-count 1\n");
    for (size_t i = 0; i < n_events; i++) {
        fprintf(f, "event %" PRIu32 " %" PRIu64 "\n", events[i].mark, events[i].count);
    }
    if (out_of_memory) {
        fprintf(f, "error out of memory: events lost\n");
    }
    fprintf(f, "total %" PRIu64 "\n", insn_count);
    fclose(f);
}

static int parse_mark(const char *key, const char *value)
{
    char *end = NULL;
    long m = strtol(key + 4, &end, 10);
    if (end == key + 4 || *end != '\0' || m < 0 || m >= MAX_MARKS) {
        return -1;
    }
    unsigned long long addr = strtoull(value, &end, 0);
    if (end == value || *end != '\0') {
        return -1;
    }
    mark_addr[m] = (uint64_t)addr & ~(uint64_t)1; /* clear the Thumb bit */
    mark_used[m] = 1;
    return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        if (eq == NULL) {
            fprintf(stderr, "mcuq_insn_count: argument '%s' is not name=value (out=PATH, markN=ADDR)\n", arg);
            return -1;
        }
        size_t klen = (size_t)(eq - arg);
        if (klen == 3 && strncmp(arg, "out", 3) == 0) {
            out_path = strdup(eq + 1);
        } else if (klen > 4 && klen < 16 && strncmp(arg, "mark", 4) == 0) {
            char key[16];
            memcpy(key, arg, klen);
            key[klen] = '\0';
            if (parse_mark(key, eq + 1) != 0) {
                fprintf(stderr, "mcuq_insn_count: bad argument '%s': markN=ADDR with 0 <= N < %d\n", arg, MAX_MARKS);
                return -1;
            }
        } else {
            fprintf(stderr, "mcuq_insn_count: unknown argument '%s' (expected out=PATH, markN=ADDR)\n", arg);
            return -1;
        }
    }
    if (out_path == NULL) {
        fprintf(stderr, "mcuq_insn_count: missing out=PATH\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_events, NULL);
    return 0;
}
