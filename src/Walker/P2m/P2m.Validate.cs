// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // The argument checks of SetEntry, shared with FastEpt.Interop's native writer.
    public sealed partial class P2m
    {
        /// <summary>
        /// The argument checks of <see cref="SetEntry"/>: throws exactly what it throws for bad
        /// arguments, changes nothing. Internal so that FastEpt.Interop's native writer reports
        /// the same errors.
        /// </summary>
        internal void ValidateSet(ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe)
        {
            ValidateSetArguments(gfn, order, type, access, suppressVe, _support1G, _addressBits);

            ulong count = 1UL << (int)order;
            if ((gfn & (count - 1)) != 0)
            {
                ThrowHelper.ThrowArgumentException(nameof(gfn), $"GFN 0x{gfn:X} is not aligned to order {(int)order}.");
            }

            if (type == P2mType.MapForeign && order != PageOrder.Size4K)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(order), order, "Foreign mappings are 4K only.");
            }

            if (mfn == Mfn.Invalid)
            {
                if (NeedsFrame(type))
                {
                    ThrowHelper.ThrowArgumentOutOfRangeException(nameof(mfn), "INVALID", $"Type {type} maps a host frame; Mfn.Invalid is not one.");
                }
            }
            else
            {
                if ((mfn & (count - 1)) != 0)
                {
                    ThrowHelper.ThrowArgumentException(nameof(mfn), $"MFN 0x{mfn:X} is not aligned to order {(int)order}.");
                }

                if (type == P2mType.PopulateOnDemand)
                {
                    ThrowHelper.ThrowArgumentOutOfRangeException(nameof(mfn), $"0x{mfn:X}", "Populate-on-demand entries carry no frame: pass Mfn.Invalid.");
                }

                // RAM-backed frames must be host memory; MMIO frames must fit the host address width.
                ulong limit = type is P2mType.MmioDm or P2mType.MmioDirect or P2mType.Invalid ? _hostFrameLimit : _frameCount;
                if (mfn >= limit || count > limit - mfn)
                {
                    ThrowHelper.ThrowArgumentOutOfRangeException_mfn(mfn, (long)limit);
                }
            }

            if (EptPermissions.IsWriteWithoutRead(type, access))
            {
                ThrowHelper.ThrowArgumentException(nameof(access), $"Access {access} on readable type {type} would be write-without-read, an EPT misconfiguration.");
            }

            // Likewise an execute-only leaf on a CPU without the capability (SDM: misconfiguration).
            if (!Options.ExecuteOnly
                && (EptPermissions.Apply(0, type, access, order != PageOrder.Size4K, _inputs) & EptEntry.RwxMask) == 4)
            {
                ThrowHelper.ThrowArgumentException(nameof(access), $"Access {access} on type {type} gives an execute-only entry, which this CPU (P2mOptions.ExecuteOnly = false) treats as a misconfiguration.");
            }
        }

        /// <summary>
        /// The checks of <see cref="SetEntry"/> that need neither the tables nor host memory: enum
        /// ranges, the order (and 1G support) and the GFN's range. Shared with the native writer
        /// (FastEpt.Interop) so both throw the same exceptions.
        /// </summary>
        internal static void ValidateSetArguments(ulong gfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe, bool support1G, int addressBits)
        {
            if (order is not (PageOrder.Size4K or PageOrder.Size2M or PageOrder.Size1G))
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(order), order, "The order must be 0 (4K), 9 (2M) or 18 (1G).");
            }

            if (order == PageOrder.Size1G && !support1G)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(order), order, "This p2m does not support 1G pages (P2mOptions.Support1G).");
            }

            if ((uint)type > (uint)P2mType.IoreqServer)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(type), type, "Unknown P2mType value.");
            }

            if ((uint)access > (uint)P2mAccess.R_PW)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(access), access, "Unknown P2mAccess value.");
            }

            if ((uint)suppressVe > (uint)SuppressVe.Set)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(suppressVe), suppressVe, "Unknown SuppressVe value.");
            }

            if (gfn >= 1UL << (addressBits - EptEntry.PageBits))
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_gfn(gfn, addressBits);
            }
        }

        // Types whose entries must name a real host frame (Xen accepts INVALID_MFN only for PoD,
        // mmio_direct and paging types; invalid and mmio_dm with no frame build an empty entry).
        private static bool NeedsFrame(P2mType type) => type switch
        {
            P2mType.Invalid or P2mType.MmioDm or P2mType.MmioDirect or P2mType.PopulateOnDemand
                or P2mType.RamPagingOut or P2mType.RamPaged or P2mType.RamPagingIn => false,
            _ => true,
        };
    }
}
