// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>
    /// Told about every entry the host p2m writes, with the host's writer lock held (Xen's
    /// <c>p2m_altp2m_propagate_change</c> hook, docs/model/altp2m.md §4.5).
    /// </summary>
    internal interface IHostChangeObserver
    {
        /// <param name="gfn">First GFN of the written range (aligned to <paramref name="order"/>).</param>
        /// <param name="order">0, 9 or 18.</param>
        /// <param name="mfn">The frame written, <see cref="Mfn.Invalid"/> when the entry names none.</param>
        /// <param name="type">The type written.</param>
        /// <param name="access">The access written.</param>
        /// <param name="before">The host's entry for <paramref name="gfn"/> just before the write.</param>
        void OnHostChange(ulong gfn, int order, ulong mfn, P2mType type, P2mAccess access, in P2mEntry before);
    }
}
