// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;

namespace FastEpt.Cli.Replay
{
    /// <summary>How the replay guest's memory is mapped.</summary>
    public enum PageMode
    {
        /// <summary>Every guest page is a 4 KiB page.</summary>
        Size4K,

        /// <summary>Every guest page is a 2 MiB superpage.</summary>
        Size2M,

        /// <summary>Every guest page is a 1 GiB superpage (<see cref="ReplayOptions.GuestBytes"/> must be a multiple of 1 GiB).</summary>
        Size1G,

        /// <summary>Each 2 MiB region is, by a seeded coin toss, one 2 MiB superpage or 512 4 KiB pages.</summary>
        Mixed,
    }

    /// <summary>Settings of one replay (<see cref="Replayer.Run"/>); checked when the replay starts.</summary>
    public sealed class ReplayOptions
    {
        /// <summary>The largest guest a replay builds (1 TiB).</summary>
        public const long MaxGuestBytes = 1L << 40;

        /// <summary>The most altp2m views (<see cref="Views"/>).</summary>
        public const int MaxViews = 64;

        /// <summary>The largest <see cref="Batch"/>.</summary>
        public const int MaxBatch = 1 << 16;

        /// <summary>
        /// Size of the replay guest in bytes (default 4 GiB): a multiple of 2 MiB (1 GiB with
        /// <see cref="PageMode.Size1G"/>), at most <see cref="MaxGuestBytes"/>. A trace address
        /// <c>a</c> is replayed at guest-physical address
        /// <c>((a / 4096) mod (GuestBytes / 4096)) * 4096 + a mod 4096</c>; hot-page statistics use the trace address itself.
        /// </summary>
        public long GuestBytes { get; set; } = 4L << 30;

        /// <summary>The page size the guest is mapped with (default <see cref="PageMode.Size4K"/>).</summary>
        public PageMode Pages { get; set; } = PageMode.Size4K;

        /// <summary>4 KiB entries of the software TLB in front of each view: 0 (no TLB) or a power of two up to 2^24 (default 256).</summary>
        public int TlbEntries { get; set; } = 256;

        /// <summary>0 (default): one scalar <c>Translate</c> per access; N: accesses are translated with <c>TranslateBatch</c> N at a time (grouped per view and access kind), 1..<see cref="MaxBatch"/>.</summary>
        public int Batch { get; set; }

        /// <summary>
        /// Altp2m views besides the host view, 0..<see cref="MaxViews"/> (default 0). The replay
        /// guest's domain gets one vCPU per view (vCPU <c>v</c> in view <c>v</c>, view 0 being the
        /// host p2m) and accesses are dealt round-robin over them, each view with its own TLB. The
        /// alternate views start empty and are filled on fault from the host p2m (altp2m lazy copy),
        /// so each one's first access to a page is a not-present EPT violation.
        /// </summary>
        public int Views { get; set; }

        /// <summary>
        /// The default access of the alternate views (default <see cref="P2mAccess.RWX"/>): pages
        /// copied into a view get it. An access it does not allow is a rights EPT violation that the
        /// domain, having no mem_access listener, resolves as Xen does (the entry is relaxed to RWX,
        /// or promoted for <see cref="P2mAccess.RX2RW"/>), once per page and view.
        /// </summary>
        public P2mAccess ViewAccess { get; set; } = P2mAccess.RWX;

        /// <summary>Rows of the hot-page and hot-region tables, 1..100000 (default 20).</summary>
        public int HotN { get; set; } = 20;

        /// <summary>
        /// Whether a background task reads and decodes the trace, and gathers the trace's own
        /// statistics, ahead of the translation (null, the default: when the machine has more than
        /// one logical CPU). Reports are identical either way; tests pin both.
        /// </summary>
        internal bool? ReadAhead { get; set; }

        internal void Validate()
        {
            long align = Pages == PageMode.Size1G ? 1L << 30 : 1L << 21;
            if (GuestBytes <= 0 || GuestBytes > MaxGuestBytes || GuestBytes % align != 0)
            {
                throw new ArgumentOutOfRangeException(nameof(GuestBytes), GuestBytes, $"GuestBytes must be a positive multiple of {align} bytes, at most {MaxGuestBytes}.");
            }

            if (!Enum.IsDefined(Pages))
            {
                throw new ArgumentOutOfRangeException(nameof(Pages), Pages, "Unknown page mode.");
            }

            if (TlbEntries < 0 || TlbEntries > SoftTlb.MaxCapacityLimit || (TlbEntries & (TlbEntries - 1)) != 0)
            {
                throw new ArgumentOutOfRangeException(nameof(TlbEntries), TlbEntries, $"TlbEntries must be 0 or a power of two up to {SoftTlb.MaxCapacityLimit}.");
            }

            if (Batch < 0 || Batch > MaxBatch)
            {
                throw new ArgumentOutOfRangeException(nameof(Batch), Batch, $"Batch must be between 0 and {MaxBatch}.");
            }

            if (Views < 0 || Views > MaxViews)
            {
                throw new ArgumentOutOfRangeException(nameof(Views), Views, $"Views must be between 0 and {MaxViews}.");
            }

            if (!Enum.IsDefined(ViewAccess))
            {
                throw new ArgumentOutOfRangeException(nameof(ViewAccess), ViewAccess, "Unknown access.");
            }

            if (HotN < 1 || HotN > 100_000)
            {
                throw new ArgumentOutOfRangeException(nameof(HotN), HotN, "HotN must be between 1 and 100000.");
            }
        }
    }

    /// <summary>A progress snapshot of a running replay.</summary>
    public readonly struct ReplayProgress
    {
        /// <summary>Creates a snapshot.</summary>
        /// <param name="accesses">Accesses replayed so far.</param>
        /// <param name="bytesDone">Trace bytes consumed so far.</param>
        /// <param name="bytesTotal">Trace size in bytes, or -1 when unknown.</param>
        /// <param name="accessesPerSecond">Replay rate so far.</param>
        public ReplayProgress(long accesses, long bytesDone, long bytesTotal, double accessesPerSecond)
        {
            Accesses = accesses;
            BytesDone = bytesDone;
            BytesTotal = bytesTotal;
            AccessesPerSecond = accessesPerSecond;
        }

        /// <summary>Accesses replayed so far.</summary>
        public long Accesses { get; }

        /// <summary>Trace bytes consumed so far.</summary>
        public long BytesDone { get; }

        /// <summary>Trace size in bytes, or -1 when unknown.</summary>
        public long BytesTotal { get; }

        /// <summary>Replay rate so far (accesses per second).</summary>
        public double AccessesPerSecond { get; }
    }
}
