// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    // The two ways a stage-1 walk reads guest paging entries and records accessed/dirty flags:
    // the CPU's (through the EPT view) and the hypervisor's software walk of the mem_access fallback.
    public sealed partial class Vcpu
    {
        // How the stage-1 walk reads guest paging entries and records accessed/dirty flags.
        private interface IGuestTableAccess
        {
            // Reads the 8-byte entry at `gpa` of a table at `level`: its value and host address,
            // or the fault that stops the walk.
            bool ReadEntry(ulong gpa, out ulong pte, out ulong hpa, out GuestTranslation fault, int level);

            // ORs sets[i] (A on every entry used, D on the leaf of a write, placed in the entry's
            // half of the quadword for 4-byte entries) into the quadword at gpas[i] that read as
            // values[i]. 0: done; 1: an entry changed (walk again); -1: the update was refused (`fault`).
            int SetAccessedDirty(int topLevel, ReadOnlySpan<ulong> gpas, ReadOnlySpan<ulong> hpas, ReadOnlySpan<ulong> values, ReadOnlySpan<ulong> sets,
                                 out GuestTranslation fault);
        }

        // The CPU's way: every paging-structure access translated through the EPT view, A/D set by
        // compare-exchange where EPT grants write (docs/model/ept.md §1.5).
        private readonly struct EptTableAccess : IGuestTableAccess
        {
            private readonly P2m _ept;
            private readonly HostMemory _memory;
            private readonly ulong _hostBytes;
            private readonly AccessKind _structKind;

            public EptTableAccess(P2m ept, HostMemory memory)
            {
                _ept = ept;
                _memory = memory;
                _hostBytes = (ulong)memory.FrameCount << EptEntry.PageBits;
                // Paging-structure reads count as EPT writes when the EPTP enables A/D.
                _structKind = ept.AccessDirtyEnabled ? AccessKind.Read | AccessKind.Write : AccessKind.Read;
            }

            public bool ReadEntry(ulong gpa, out ulong pte, out ulong hpa, out GuestTranslation fault, int level)
            {
                pte = 0;
                hpa = 0;
                if (gpa >= _ept.GpaLimit)
                {
                    fault = new GuestTranslation(GuestStatus.EptViolation, gpa, 0, 0,
                        new EptTranslation(EptStatus.Violation, 0, _ept.Levels, (ulong)_structKind | QualGlaValid), level);
                    return false;
                }

                EptTranslation t = _ept.TranslatePagingWrite(gpa, _structKind);
                if (t.Status != EptStatus.Ok)
                {
                    fault = EptFailure(gpa, t, final: false, level);
                    return false;
                }

                // A paging structure outside host memory (device memory) reads as all ones,
                // as an unclaimed bus read does: reserved bits, so a #PF, never a wild read.
                hpa = t.Hpa;
                pte = hpa + 8 <= _hostBytes ? Volatile.Read(ref _memory.DangerousSlot(hpa)) : ~0UL;
                fault = default;
                return true;
            }

            public int SetAccessedDirty(int topLevel, ReadOnlySpan<ulong> gpas, ReadOnlySpan<ulong> hpas, ReadOnlySpan<ulong> values, ReadOnlySpan<ulong> sets,
                                        out GuestTranslation fault)
            {
                fault = default;
                for (int i = 0; i < gpas.Length; i++)
                {
                    ulong want = values[i] | sets[i];
                    if (want == values[i])
                    {
                        continue;
                    }

                    EptTranslation t = _ept.TranslatePagingWrite(gpas[i], AccessKind.Write);
                    if (t.Status != EptStatus.Ok)
                    {
                        // With EPT A/D off the paging-structure access that must set the flag is
                        // reported as a read and a write (qualification bits 0 and 1), as with
                        // kvm-unit-tests' ept_access_test_paddr_*_ad_disabled; with A/D on the read
                        // already counted as a write (docs/model/guest-paging.md §8.4).
                        fault = EptFailure(gpas[i], t, final: false, topLevel - i,
                                           _ept.AccessDirtyEnabled ? 0 : (ulong)AccessKind.Read);
                        return -1;
                    }

                    if (hpas[i] + 8 > _hostBytes)
                    {
                        continue;    // not RAM: nothing to update
                    }

                    ref ulong slot = ref _memory.DangerousSlot(hpas[i]);
                    if (Interlocked.CompareExchange(ref slot, want, values[i]) != values[i])
                    {
                        return 1;
                    }
                }

                return 0;
            }
        }

        // The hypervisor's software walk of the fallback: reads through the guest-memory accessor
        // (which locks internally), ignores EPT access rights and leaves A/D alone.
        private readonly struct SoftwareTableAccess : IGuestTableAccess
        {
            private readonly Vcpu _vcpu;
            private readonly int _view;

            public SoftwareTableAccess(Vcpu vcpu, int view)
            {
                _vcpu = vcpu;
                _view = view;
            }

            public bool ReadEntry(ulong gpa, out ulong pte, out ulong hpa, out GuestTranslation fault, int level)
            {
                hpa = 0;
                if (_vcpu.TryReadGuestUInt64(_view, gpa, out pte))
                {
                    fault = default;
                    return true;
                }

                fault = new GuestTranslation(GuestStatus.EptViolation, gpa, 0, 0, default, level);
                return false;
            }

            public int SetAccessedDirty(int topLevel, ReadOnlySpan<ulong> gpas, ReadOnlySpan<ulong> hpas, ReadOnlySpan<ulong> values, ReadOnlySpan<ulong> sets,
                                        out GuestTranslation fault)
            {
                fault = default;
                return 0;
            }
        }
    }
}
