// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;

namespace FastEpt
{
    // Filling: what a successful walk (or a superpage entry) puts into the arrays.
    public sealed partial class SoftTlb
    {
        private EptTranslation SuperpageHit(ulong gpa, ulong data, ulong offsetMask)
        {
            _counts.Hits++;

            return SuperpageFill(gpa, data, offsetMask);
        }

        private EptTranslation SuperpageFill(ulong gpa, ulong data, ulong offsetMask)
        {
            ulong hpa = (data & ~EptEntry.PageMask) | (gpa & offsetMask);
            ulong payload = data & EptEntry.PageMask;
            Fill4K(gpa, (hpa & ~EptEntry.PageMask) | payload);
            return new EptTranslation(EptStatus.Ok, hpa, (int)(payload >> LevelShift), 0);
        }

        private void Fill(ulong gpa, EptTranslation t, uint access)
        {
            int level = t.Level;
            if (level < 1 || level > 3)
            {
                return;
            }

            ulong offsetMask = (1UL << (EptEntry.PageBits + EptEntry.TableOrder * (level - 1))) - 1;
            ulong hpaBase = t.Hpa & ~offsetMask;
            // The walk proved only `access`; the other rights come from the same path, re-read
            // (cache-hot). If a writer changed it meanwhile, its generation bump flushes us anyway.
            if (!_p2m.TryGetTlbRights(gpa, level, hpaBase, out uint rights) || (access & ~rights) != 0)
            {
                return;
            }

            if (_accessDirty && (access & (uint)AccessKind.Write) == 0)
            {
                rights &= ~(uint)AccessKind.Write;   // a later write must walk to set the dirty flag
            }

            ulong payload = rights | ((ulong)level << LevelShift);
            if (level == 2)
            {
                ref Entry e2 = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_entries2M), (nint)((gpa >> 21) & (Entries2M - 1)));
                e2.Tag = (gpa & ~Mask2M) | _epoch;
                e2.Data = hpaBase | payload;
            }
            else if (level == 3)
            {
                ref Entry e1 = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_entries1G), (nint)((gpa >> 30) & (Entries1G - 1)));
                e1.Tag = (gpa & ~Mask1G) | _epoch;
                e1.Data = hpaBase | payload;
            }

            Fill4K(gpa, (t.Hpa & ~EptEntry.PageMask) | payload);
        }

        // `data` is the 4 KiB page's HPA | payload; the slot keeps HPA page - GPA page instead,
        // so a hit adds it to the GPA (one add) to get the HPA with the offset.
        private void Fill4K(ulong gpa, ulong data)
        {
            ref Entry e = ref Slot(gpa);
            if ((e.Tag & EpochMask) != _epoch)
            {
                _used++;    // a slot empty in this epoch
            }

            e.Tag = (gpa & ~EptEntry.PageMask) | ((data & (ulong)AccessKind.Read) == 0 ? NoReadTag : 0) | _epoch;
            e.Data = unchecked((data & ~EptEntry.PageMask) - (gpa & ~EptEntry.PageMask)) | (data & EptEntry.PageMask);
        }
    }
}
