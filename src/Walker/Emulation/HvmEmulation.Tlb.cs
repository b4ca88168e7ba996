// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    // The fast path of an access that stays in one page of guest RAM the vCPU's combined TLB
    // holds: a probe and a copy, no walk, no piece bookkeeping (docs/concurrency.md, "The combined TLB").
    public sealed partial class HvmEmulation
    {
        // True when the access was done from a TLB hit. False changes nothing the caller sees
        // (the slow path then does the access: a miss, a frame being freed, an invalidation).
        [SkipLocalsInit]
        private bool TryTlbAccess(ulong gla, Span<byte> readBuf, ReadOnlySpan<byte> writeData, bool write, PageFaultErrorCode pfec)
        {
            LinearTlb tlb = _vcpu.Tlb;
            if (!tlb.TryHit(gla, pfec, out ulong hpa, out _))
            {
                return false;
            }

            HostMemory memory = _domain.Memory;
            ulong mfn = hpa >> EptEntry.PageBits;       // inside host memory: checked at fill
            _vcpu.BeforeReference?.Invoke();            // tests: a writer between the probe and the frame
            int offset = (int)(hpa & EptEntry.PageMask);
            if (write)
            {
                // A write needs the frame held: the generation re-read after the reference proves
                // no invalidation completed before it, and frames are freed only after one.
                if (!memory.TryAddReference(mfn))
                {
                    return false;
                }

                try
                {
                    if (!tlb.StillCurrent)
                    {
                        return false;
                    }

                    writeData.CopyTo(memory.Frame(mfn).Slice(offset));
                    return true;
                }
                finally
                {
                    memory.ReleaseReference(mfn);
                }
            }

            // A read copies first and validates after: if the generation did not move, no
            // invalidation completed before the copy, so the frame was not yet freed (nor reused)
            // and the bytes are the mapped page's. Otherwise they are dropped.
            Span<byte> bytes = stackalloc byte[MaxAccessBytes];
            bytes = bytes[..readBuf.Length];
            memory.Frame(mfn).Slice(offset, bytes.Length).CopyTo(bytes);
            Volatile.ReadBarrier();     // the copy's loads before the generation's
            if (!tlb.StillCurrent)
            {
                return false;
            }

            bytes.CopyTo(readBuf);
            return true;
        }
    }
}
