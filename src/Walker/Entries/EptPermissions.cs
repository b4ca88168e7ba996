// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>
    /// Turns a p2m type and access into the hardware bits of a leaf (Xen's
    /// <c>ept_p2m_type_to_flags</c>, docs/model/types.md §2.3). Pure functions; thread-safe.
    /// </summary>
    public static class EptPermissions
    {
        /// <summary>
        /// Returns <paramref name="entry"/> with r/w/x, A/D and paging-write recomputed from
        /// <paramref name="type"/> and <paramref name="access"/>. The type grants base
        /// permissions, the access only ever clears them, and a superpage loses x when
        /// <see cref="P2mOptions.ExecutableSuperpages"/> is off. Memory type and ignore-PAT are
        /// not touched. Enum values are not validated.
        /// </summary>
        /// <param name="entry">The entry being built (its MFN is used for the read-only MMIO check).</param>
        /// <param name="type">The p2m type.</param>
        /// <param name="access">The p2m access.</param>
        /// <param name="superPage">Whether the entry maps a 2 MiB or 1 GiB page.</param>
        /// <param name="options">The CPU and domain inputs (A/D, PML, paging-write, ioreq, read-only MMIO).</param>
        public static EptEntry Apply(EptEntry entry, P2mType type, P2mAccess access, bool superPage, P2mOptions options)
        {
            ArgumentNullException.ThrowIfNull(options);
            return new EptEntry(Apply(entry.Raw, type, access, superPage, new Inputs(options)));
        }

        /// <summary>
        /// True when <paramref name="access"/> on <paramref name="type"/> would produce
        /// write-without-read (rwx 010 or 110), an EPT misconfiguration: FastEpt rejects it
        /// wherever an access is set (docs/model/README.md §0.3).
        /// </summary>
        public static bool IsWriteWithoutRead(P2mType type, P2mAccess access)
            => (access == P2mAccess.W || access == P2mAccess.WX) && IsReadableType(type);

        /// <summary>True for types whose base permissions include read (docs/model/types.md §2.3 step 1).</summary>
        public static bool IsReadableType(P2mType type) => type switch
        {
            P2mType.RamRw or P2mType.IoreqServer or P2mType.MmioDirect or P2mType.RamLogDirty
                or P2mType.RamRo or P2mType.RamShared or P2mType.GrantMapRw or P2mType.MapForeign
                or P2mType.GrantMapRo => true,
            _ => false,
        };

        // The per-p2m inputs of type_to_flags, copied once so the hot split loop reads fields.
        internal readonly struct Inputs
        {
            public readonly bool AccessDirty;
            public readonly bool Pml;
            public readonly bool PagingWrite;
            public readonly bool ExecSuperpages;
            public readonly bool IoreqClaimsWrites;
            public readonly Func<ulong, bool>? MmioReadOnly;

            public Inputs(P2mOptions o)
            {
                AccessDirty = o.AccessDirty;
                Pml = o.PmlEnabled;
                PagingWrite = o.PagingWriteSupported;
                ExecSuperpages = o.ExecutableSuperpages;
                IoreqClaimsWrites = o.IoreqServerClaimsWrites;
                MmioReadOnly = o.MmioReadOnly;
            }
        }

        internal static ulong Apply(ulong raw, P2mType type, P2mAccess access, bool superPage, in Inputs inputs)
        {
            const ulong R = 1, W = 2, X = 4;
            ulong rwx;
            bool a = false, d = false, touchAd = true;
            switch (type)
            {
                case P2mType.RamRw:
                    rwx = R | W | X;
                    a = d = inputs.AccessDirty;
                    break;
                case P2mType.IoreqServer:
                    rwx = inputs.IoreqClaimsWrites ? R : R | W;
                    a = inputs.AccessDirty;
                    d = (rwx & W) != 0 && a;
                    break;
                case P2mType.MmioDirect:
                    ulong mfn = (raw & EptEntry.MfnMask) >> EptEntry.MfnShift;
                    bool ro = inputs.MmioReadOnly is not null && inputs.MmioReadOnly(mfn);
                    rwx = ro ? R | X : R | W | X;
                    a = inputs.AccessDirty;
                    d = !ro && inputs.AccessDirty;
                    break;
                case P2mType.RamLogDirty:
                    rwx = inputs.Pml && !superPage ? R | W | X : R | X;
                    a = inputs.AccessDirty;
                    break;
                case P2mType.RamRo:
                case P2mType.RamShared:
                    rwx = R | X;
                    a = inputs.AccessDirty;
                    break;
                case P2mType.GrantMapRw:
                case P2mType.MapForeign:
                    rwx = R | W;
                    a = d = inputs.AccessDirty;
                    break;
                case P2mType.GrantMapRo:
                    rwx = R;
                    a = inputs.AccessDirty;
                    break;
                default:
                    // invalid, mmio_dm, pod, paging types, broken, unknown: not present, A/D untouched.
                    rwx = 0;
                    touchAd = false;
                    break;
            }

            // Step 2: the access clears bits, never adds (r_pw also grants paging-write).
            bool pw = false;
            switch (access)
            {
                case P2mAccess.N:
                case P2mAccess.N2RWX:
                    rwx = 0;
                    break;
                case P2mAccess.R_PW:
                    pw = inputs.PagingWrite;
                    rwx &= R;
                    break;
                case P2mAccess.R:
                    rwx &= R;
                    break;
                case P2mAccess.W:
                    rwx &= W;
                    break;
                case P2mAccess.X:
                    rwx &= X;
                    break;
                case P2mAccess.RX:
                case P2mAccess.RX2RW:
                    rwx &= R | X;
                    break;
                case P2mAccess.WX:
                    rwx &= W | X;
                    break;
                case P2mAccess.RW:
                    rwx &= R | W;
                    break;
            }

            // Step 3: XSA-304 mitigation.
            if (superPage && !inputs.ExecSuperpages)
            {
                rwx &= ~X;
            }

            raw = (raw & ~(EptEntry.RwxMask | EptEntry.PagingWriteBit)) | rwx | (pw ? EptEntry.PagingWriteBit : 0);
            if (touchAd)
            {
                raw = (raw & ~(EptEntry.AccessedBit | EptEntry.DirtyBit))
                    | (a ? EptEntry.AccessedBit : 0) | (d ? EptEntry.DirtyBit : 0);
            }

            return raw;
        }
    }
}
