/* The native block clock: a UC_HOOK_BLOCK callback that charges each translated
 * block's instruction count to a counter and stops the engine when a budget is spent.
 *
 * Plain C with no Python and no Unicorn headers: the Python side (emu/pc/clock.py)
 * loads this library with ctypes, hands it the addresses of libunicorn's own
 * uc_emu_stop and uc_ctl (taken from the binding's loaded library), and registers
 * bc_block_hook with uc_hook_add on the binding's engine handle, user data = the
 * bc_state below.  The prototypes used are declared here from the Unicorn API's
 * documented signatures (uc_cb_hookcode_t, uc_emu_stop, uc_ctl).
 *
 * Counting rule (deterministic: a pure function of the guest's execution):
 *   - a block is charged when it is entered, with its exact instruction count, which
 *     Unicorn 2.1.x reports for a translated block through
 *     uc_ctl(UC_CTL_TB_REQUEST_CACHE) (uc_tb.icount; the lookup hits the engine's
 *     jump cache because the block is the one being entered);
 *   - when the counter has reached the budget at a block's entry, that block is not
 *     charged and the engine stops before running it (Unicorn calls block hooks
 *     ahead of the block's exit check), so a run overshoots its budget by less than
 *     one block; with exact_stop, a block that would cross the budget is not entered
 *     either, and the caller steps its first instructions itself (budget_stop 2);
 *   - a run that was stopped in the middle of a block (a code hook's stop) resumes in
 *     the middle of it: the first block of the next run is not charged again when it
 *     ends where the interrupted block ended (bc_state.resume_*), so the total stays
 *     exact;
 *   - a block left early by an exception is charged whole (documented in clock.py).
 */

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef int (*uc_emu_stop_fn)(void *uc);
typedef int (*uc_ctl_fn)(void *uc, int control, ...);

/* uc_tb as unicorn.h declares it: pc, icount, size. */
struct uc_tb_view {
    uint64_t pc;
    uint16_t icount;
    uint16_t size;
};

/* UC_CTL_READ_WRITE(UC_CTL_TB_REQUEST_CACHE, 2): type 8, 2 arguments, read|write. */
#define BC_CTL_TB_REQUEST_CACHE (8 | (2 << 26) | (3u << 30))

/* A direct-mapped cache of block instruction counts, so most blocks are counted without a
 * call into the engine.  An entry is trusted only while the guest runs without paging
 * (linear = physical, so the block's bytes are in `ram`) and when the block has the same
 * start, byte size and first and last 8 bytes as when it was counted: code rewritten in
 * place is asked about again. */
#define BC_CACHE_SIZE 8192
struct bc_cache_entry {
    uint64_t pc;
    uint64_t head;
    uint64_t tail;
    uint32_t size;
    uint32_t icount;
};

struct bc_state {
    uint64_t executed;     /* instructions charged so far (the clock, absolute) */
    uint64_t budget;       /* stop at the first block entry with executed >= budget */
    uint64_t blocks;       /* blocks charged (statistics) */
    uint64_t resume_pc;    /* linear address a run resumes at inside a charged block */
    uint64_t resume_end;   /* end (linear) of that block; 0 = no resume pending */
    uint64_t last_pc;      /* the last block charged: start, end, instruction count */
    uint64_t last_end;
    uint32_t last_icount;
    uint32_t budget_stop;  /* 1: stopped at a block entry at/past the budget;
                              2: stopped before a block that would cross it (exact_stop) */
    uint32_t estimated;    /* blocks whose count had to be estimated from their size */
    uint32_t exact;        /* 1: icount from the engine; 0: size-based estimate */
    uint32_t exact_stop;   /* 1: do not enter a block that would cross the budget */
    uint32_t partial_left; /* budget_stop 2: instructions of that block still allowed */
    uint64_t partial_pc;   /* budget_stop 2: the block (start, end) */
    uint64_t partial_end;
    uc_emu_stop_fn emu_stop;
    uc_ctl_fn ctl;
    const uint8_t *ram;    /* guest RAM below the PCI hole (linear = physical there) */
    uint64_t ram_size;
    const uint32_t *paging; /* the TLB fill's `switched` flag; NULL: no count cache */
    uint64_t cache_hits;
    struct bc_cache_entry *cache; /* BC_CACHE_SIZE entries, owned by the caller */
};



static void bc_block_bytes(const struct bc_state *st, uint64_t pc, uint32_t size,
                           uint64_t *head, uint64_t *tail)
{
    const uint8_t *code = st->ram + pc;
    uint32_t n = size < 8 ? size : 8;
    *head = 0;
    *tail = 0;
    memcpy(head, code, n);
    memcpy(tail, code + size - n, n);
}

/* Average x86 instruction length used by the size-based estimate (bytes). */
#define BC_ESTIMATE_BYTES 3

void bc_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    struct bc_state *st = (struct bc_state *)user_data;
    uint32_t icount = 0;
    struct uc_tb_view tb;

    if (st->resume_end != 0) {
        uint64_t end = st->resume_end;
        st->resume_end = 0;
        if (address == st->resume_pc && size > 0 && address + size <= end) {
            /* The tail of a block already charged (or counted by the caller).  It may
             * come back shorter than it was: the engine cuts a block translated with a
             * code hook (the caller's stepping) where the hook calls fill its op buffer. */
            st->last_pc = address;
            st->last_end = end;
            return;
        }
    }
    if (st->executed >= st->budget) {
        st->budget_stop = 1;
        st->emu_stop(uc);
        return;
    }
    if (st->exact) {
        int cacheable = st->cache != NULL && st->paging != NULL && !*st->paging && size > 0
                        && address + size <= st->ram_size;
        struct bc_cache_entry *e = &st->cache[(address ^ (address >> 13)) % BC_CACHE_SIZE];
        uint64_t head = 0, tail = 0;
        if (cacheable) {
            bc_block_bytes(st, address, size, &head, &tail);
            if (e->pc == address && e->size == size && e->head == head && e->tail == tail) {
                icount = e->icount;
                st->cache_hits++;
            }
        }
        if (icount == 0 && st->ctl(uc, BC_CTL_TB_REQUEST_CACHE, address, &tb) == 0
                && tb.pc == address) {
            icount = tb.icount;
            if (cacheable) {
                e->pc = address;
                e->size = size;
                e->head = head;
                e->tail = tail;
                e->icount = icount;
            }
        }
    }
    if (icount == 0) {
        icount = size / BC_ESTIMATE_BYTES;
        if (icount == 0)
            icount = 1;
        st->estimated++;
    }
    if (st->exact_stop && st->executed + icount > st->budget) {
        /* The caller runs the first partial_left instructions of this block itself. */
        st->budget_stop = 2;
        st->partial_left = (uint32_t)(st->budget - st->executed);
        st->partial_pc = address;
        st->partial_end = address + size;
        st->emu_stop(uc);
        return;
    }
    st->executed += icount;
    st->blocks++;
    st->last_pc = address;
    st->last_end = address + size;
    st->last_icount = icount;
}

/* The TLB fill hook (UC_HOOK_TLB_FILL with the engine in UC_TLB_VIRTUAL mode), for a
 * guest running without paging, where linear addresses are physical ones.
 *
 * Why: Unicorn 2.1.4 takes the slow store path (notdirty_write) for every store through
 * a TLB entry that also allows instruction fetches, and the x86 TLB fill of a CPU without
 * paging makes every entry executable: guest stores run 10-20 times slower than loads.
 * Here a data access to a page that never had code fetched from it gets a read/write
 * entry, so the page is marked dirty after its first store and later stores take the fast
 * path; a page code was ever fetched from keeps executable entries and the slow path, which
 * is what detects self-modifying code.  Region permissions are still checked by the engine.
 *
 * When the guest turns paging on (CR0.PG), this hook cannot walk page tables: it switches
 * the engine back to its own TLB (UC_TLB_CPU) and fails the fill, which ends the run with
 * an error the caller recognises by `switched`; the access is restarted under the CPU TLB.
 */

typedef int (*uc_reg_read_fn)(void *uc, int regid, void *value);

struct uc_tlb_entry_view {
    uint64_t paddr;
    int perms;
};

struct bc_tlb {
    uc_reg_read_fn reg_read;
    uc_ctl_fn ctl;
    int cr0_regid;         /* UC_X86_REG_CR0 */
    uint32_t switched;     /* 1 once paging was seen and the engine's TLB restored */
    uint64_t fills;
    uint64_t last_vaddr;   /* the last fill (diagnostics) */
    int last_type;
    uint8_t *code_pages;   /* 1 bit per 4 KiB page of the 32-bit space: code was fetched */
};

#define BC_PROT_READ 1
#define BC_PROT_WRITE 2
#define BC_PROT_EXEC 4
#define BC_MEM_FETCH 18      /* uc_mem_type UC_MEM_FETCH */
#define BC_CR0_PG 0x80000000u
/* UC_CTL_WRITE(UC_CTL_TLB_TYPE, 1): type 12, 1 argument, write; UC_TLB_CPU = 0. */
#define BC_CTL_TLB_TYPE (12 | (1 << 26) | (1u << 30))

bool bc_tlb_fill(void *uc, uint64_t vaddr, int type, struct uc_tlb_entry_view *entry,
                 void *user_data)
{
    struct bc_tlb *t = (struct bc_tlb *)user_data;
    uint64_t cr0 = 0;

    t->fills++;
    t->last_vaddr = vaddr;
    t->last_type = type;
    if (t->reg_read(uc, t->cr0_regid, &cr0) != 0 || (cr0 & BC_CR0_PG)) {
        t->ctl(uc, BC_CTL_TLB_TYPE, 0);
        t->switched = 1;
        return false;
    }
    /* Without paging there is no long mode: linear addresses are 32 bits (a segment base
     * plus an offset can carry past bit 31 in the engine's 64-bit arithmetic). */
    entry->paddr = vaddr & 0xFFFFF000u;
    uint32_t page = (uint32_t)(entry->paddr >> 12);
    if (type == BC_MEM_FETCH)
        t->code_pages[page >> 3] |= (uint8_t)(1u << (page & 7));
    /* A page that ever held fetched code keeps executable entries (the engine's slow,
     * self-modifying-code-safe store path): Unicorn 2.1.4 marks a data-only entry dirty
     * after one store even while other translated blocks remain on its page, so later
     * stores there would leave those blocks stale. */
    if (type == BC_MEM_FETCH || (t->code_pages[page >> 3] & (1u << (page & 7))))
        entry->perms = BC_PROT_READ | BC_PROT_WRITE | BC_PROT_EXEC;
    else
        entry->perms = BC_PROT_READ | BC_PROT_WRITE;
    return true;
}
