// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>
    /// Chooses a leaf's EPT memory type (Xen's <c>epte_get_entry_emt</c>, docs/model/ept.md §1.3).
    /// </summary>
    public interface IEmtPolicy
    {
        /// <summary>
        /// Returns the memory type (0..6) for mapping <paramref name="gfn"/> → <paramref name="mfn"/>
        /// at <paramref name="order"/>, or -1 when no single type fits the whole range (the entry
        /// is then stored with the fault marker 7, so its next use misconfigures).
        /// </summary>
        /// <remarks>Called by writers only, with the p2m's writer lock held: it must not call back into the p2m.</remarks>
        int GetMemoryType(ulong gfn, ulong mfn, int order, P2mType type, out bool ignorePat);
    }

    /// <summary>
    /// The policy of a domain with no passed-through device: write-back with PAT ignored for
    /// everything but MMIO, which is uncacheable (docs/model/ept.md §1.3 rules 1, 2 and 4).
    /// </summary>
    public sealed class DefaultEmtPolicy : IEmtPolicy
    {
        private readonly Func<ulong, bool>? _mmioReadOnly;

        /// <summary>Creates the policy.</summary>
        /// <param name="mmioReadOnly">Xen's <c>mmio_ro_ranges</c> membership test, or null for none.</param>
        public DefaultEmtPolicy(Func<ulong, bool>? mmioReadOnly = null) => _mmioReadOnly = mmioReadOnly;

        /// <inheritdoc/>
        public int GetMemoryType(ulong gfn, ulong mfn, int order, P2mType type, out bool ignorePat)
        {
            if (type == P2mType.MmioDirect)
            {
                // A read-only MMIO frame is UC with PAT ignored; a superpage over it cannot decide.
                if (_mmioReadOnly is not null && mfn != Mfn.Invalid && _mmioReadOnly(mfn))
                {
                    ignorePat = true;
                    return order == 0 ? EptEntry.MemoryTypeUncacheable : -1;
                }

                ignorePat = false;
                return EptEntry.MemoryTypeUncacheable;
            }

            ignorePat = true;
            return EptEntry.MemoryTypeWriteBack;
        }
    }

    /// <summary>
    /// Settings of one <see cref="P2m"/>. The p2m copies them when it is created; later changes
    /// to this object have no effect on it.
    /// </summary>
    public sealed class P2mOptions
    {
        /// <summary>Paging levels: 4 (48-bit guest-physical) or 5 (57-bit).</summary>
        public int Levels { get; set; } = 4;

        /// <summary>Guest-physical address width in bits; GFNs at or above 2^(AddressBits-12) are rejected.</summary>
        public int AddressBits { get; set; } = 48;

        /// <summary>MAXPHYADDR: entry bits 51:HostAddressBits are reserved (a misconfiguration when set).</summary>
        public int HostAddressBits { get; set; } = 46;

        /// <summary>The CPU supports 1 GiB EPT pages (EPT capability bit 17).</summary>
        public bool Support1G { get; set; } = true;

        /// <summary>The CPU supports execute-only entries (EPT capability bit 0).</summary>
        public bool ExecuteOnly { get; set; } = true;

        /// <summary>EPTP bit 6: walks set accessed/dirty flags; new entries get A (and D where writable) preset, as Xen does on A/D-capable CPUs.</summary>
        public bool AccessDirty { get; set; }

        /// <summary>The access given to intermediate entries and to frames populated on demand.</summary>
        public P2mAccess DefaultAccess { get; set; } = P2mAccess.RWX;

        /// <summary>Page-modification logging is on: log-dirty 4 KiB leaves stay writable (docs/model/types.md §2.3).</summary>
        public bool PmlEnabled { get; set; }

        /// <summary>The CPU honours the EPT paging-write bit (bit 58), used by <see cref="P2mAccess.R_PW"/>.</summary>
        public bool PagingWriteSupported { get; set; }

        /// <summary>Superpages may be executable; false applies the XSA-304 mitigation (x cleared on superpages).</summary>
        public bool ExecutableSuperpages { get; set; } = true;

        /// <summary>An ioreq server has claimed write accesses: <see cref="P2mType.IoreqServer"/> leaves are not writable.</summary>
        public bool IoreqServerClaimsWrites { get; set; }

        /// <summary>Xen's <c>mmio_ro_ranges</c>: MMIO frames that are mapped read-only; null for none.</summary>
        public Func<ulong, bool>? MmioReadOnly { get; set; }

        /// <summary>Memory-type policy for new leaves; null selects <see cref="DefaultEmtPolicy"/>.</summary>
        public IEmtPolicy? EmtPolicy { get; set; }

        internal P2mOptions Clone() => (P2mOptions)MemberwiseClone();

        internal void Validate(string paramName)
        {
            if (Levels is not (4 or 5))
            {
                throw new ArgumentOutOfRangeException(paramName, Levels, "P2mOptions.Levels must be 4 or 5.");
            }

            if (AddressBits < 21 || AddressBits > EptEntry.PageBits + EptEntry.TableOrder * Levels)
            {
                throw new ArgumentOutOfRangeException(paramName, AddressBits, $"P2mOptions.AddressBits must be in [21, {EptEntry.PageBits + EptEntry.TableOrder * Levels}] for {Levels} levels.");
            }

            if (HostAddressBits < 32 || HostAddressBits > 52)
            {
                throw new ArgumentOutOfRangeException(paramName, HostAddressBits, "P2mOptions.HostAddressBits must be in [32, 52].");
            }

            if ((uint)DefaultAccess > (uint)P2mAccess.R_PW)
            {
                throw new ArgumentOutOfRangeException(paramName, DefaultAccess, "P2mOptions.DefaultAccess is not a P2mAccess value.");
            }
        }
    }
}
