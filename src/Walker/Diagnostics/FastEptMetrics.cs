// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics.Metrics;

namespace FastEpt
{
    /// <summary>
    /// The <c>FastEpt</c> meter (<see cref="System.Diagnostics.Metrics"/>): cumulative counters of
    /// translations, software-TLB hits and misses, violations, misconfigurations, superpage splits
    /// and entry writes, and the reclamation instruments (barriers, frames reclaimed and pending,
    /// parked readers), for <c>dotnet-counters</c> and OpenTelemetry.
    /// </summary>
    /// <remarks>
    /// <para>Every instrument is observable (counters; the reclamation gauges are read when observed): nothing is published from
    /// the hot paths. Walks and writes bump plain (non-atomic) fields of a per-thread
    /// <see cref="Counters"/> node, and only while a listener has enabled the instrument that
    /// gates the call site (<see cref="Instrument.Enabled"/> of <c>fastept.translations</c> for a
    /// walk, see <see cref="WalksEnabled"/>: three cache-hot loads and one predicted branch per
    /// call; a batch adds its totals once). Without a listener they do not advance. A software-TLB hit is too cheap for even that check: each <see cref="SoftTlb"/>
    /// keeps its hits and misses (which it always counted, see <see cref="SoftTlb.Hits"/>) in a
    /// registered <see cref="TlbCounters"/> node instead of its own fields, one extra load per
    /// lookup, and the TLB instruments sum those nodes, so they count from the TLB's creation
    /// whether or not a listener is attached.</para>
    /// <para>Nodes are linked into a lock-free list and never unlinked, so a value never goes
    /// down; a thread that registers adopts the node of a thread that has exited (its counts are
    /// kept), so the list is bounded by the number of threads alive at once. A reader sums every
    /// node; each node's fields only grow and a 64-bit load is atomic, so sums are monotonic.</para>
    /// </remarks>
    internal static class FastEptMetrics
    {
        /// <summary>The meter's name.</summary>
        internal const string MeterName = "FastEpt";

        /// <summary>The meter: every FastEpt instrument belongs to it.</summary>
        internal static readonly Meter Meter = new(MeterName, typeof(FastEptMetrics).Assembly.GetName().Version?.ToString());

        /// <summary>Translations walked by <see cref="P2m.Translate"/> and <see cref="P2m.TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/>.</summary>
        internal static readonly ObservableCounter<long> Translations = Meter.CreateObservableCounter(
            "fastept.translations", static () => Sum(static c => c.Translations), "{translation}",
            "Guest-physical translations walked by P2m.Translate and P2m.TranslateBatch (one per address; software-TLB misses included, hits not).");

        /// <summary>Walks that ended in an EPT violation.</summary>
        internal static readonly ObservableCounter<long> Violations = Meter.CreateObservableCounter(
            "fastept.violations", static () => Sum(static c => c.Violations), "{violation}",
            "Translations that ended in an EPT violation.");

        /// <summary>Walks that ended in an EPT misconfiguration.</summary>
        internal static readonly ObservableCounter<long> Misconfigs = Meter.CreateObservableCounter(
            "fastept.misconfigs", static () => Sum(static c => c.Misconfigs), "{misconfiguration}",
            "Translations that ended in an EPT misconfiguration.");

        /// <summary>Software-TLB lookups answered from the cache.</summary>
        internal static readonly ObservableCounter<long> TlbHits = Meter.CreateObservableCounter(
            "fastept.tlb.hits", static () => SumTlbs(static c => c.Hits), "{hit}",
            "SoftTlb lookups answered from the cache (4 KiB or superpage entries).");

        /// <summary>Software-TLB lookups that walked the p2m.</summary>
        internal static readonly ObservableCounter<long> TlbMisses = Meter.CreateObservableCounter(
            "fastept.tlb.misses", static () => SumTlbs(static c => c.Misses), "{miss}",
            "SoftTlb lookups that walked the p2m.");

        /// <summary>Superpages split by <see cref="P2m.SetEntry"/>.</summary>
        internal static readonly ObservableCounter<long> Splits = Meter.CreateObservableCounter(
            "fastept.splits", static () => Sum(static c => c.Splits), "{split}",
            "Superpages split into a table of smaller entries by P2m.SetEntry (a 1 GiB page split down to 4 KiB pages counts 513: itself and its 512 2 MiB children).");

        /// <summary>Entries published by <see cref="P2m.SetEntry"/>.</summary>
        internal static readonly ObservableCounter<long> EntryWrites = Meter.CreateObservableCounter(
            "fastept.entry_writes", static () => Sum(static c => c.EntryWrites), "{write}",
            "Entries changed by P2m.SetEntry (each published compare-exchange counts one).");

        /// <summary>Process-wide barriers issued by epoch reclamation (one per pass that found frames pending).</summary>
        internal static readonly ObservableCounter<long> ReclaimBarriers = Meter.CreateObservableCounter(
            "fastept.reclaim.barriers", static () => FastEpt.Internal.Reclaimer.Barriers, "{barrier}",
            "Process-wide memory barriers issued by epoch-based reclamation: one per pass, however many p2ms it serves.");

        /// <summary>Table frames epoch reclamation returned to host memory.</summary>
        internal static readonly ObservableCounter<long> ReclaimedFrames = Meter.CreateObservableCounter(
            "fastept.reclaim.frames", static () => FastEpt.Internal.Reclaimer.FramesReclaimed, "{frame}",
            "Unlinked table frames returned to host memory once no reader could be inside them.");

        /// <summary>Table frames unlinked and still waiting for reclamation, over every p2m.</summary>
        internal static readonly ObservableUpDownCounter<long> PendingFrames = Meter.CreateObservableUpDownCounter(
            "fastept.reclaim.pending", static () => FastEpt.Internal.Reclaimer.PendingFrames, "{frame}",
            "Unlinked table frames not yet returned to host memory (a reader may still be inside them), over every p2m.");

        /// <summary>Reader sections open across at least two reclamation passes.</summary>
        internal static readonly ObservableGauge<long> ParkedReaders = Meter.CreateObservableGauge(
            "fastept.reclaim.parked_readers", static () => (long)FastEpt.Internal.Epoch.ParkedReaders(), "{reader}",
            "Read-side sections (managed or native fastept_read_enter) open since at least two reclamation passes: each holds back its p2m's frees.");

        [ThreadStatic]
        private static Counters? t_counters;

        private static Counters? s_head;    // every node ever registered, newest first

        private static TlbCounters? s_tlbHead;  // every TLB node ever registered, newest first

        /// <summary>
        /// Whether walks are counted: while a listener has enabled <c>fastept.translations</c>
        /// (one check on the hot path; violations and misconfigurations are counted with it, and
        /// every listener that subscribes to the meter as a whole, as <c>dotnet-counters</c> and
        /// OpenTelemetry's <c>AddMeter</c> do, enables all three).
        /// </summary>
        internal static bool WalksEnabled
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => Translations.Enabled;
        }

        /// <summary>Whether <see cref="P2m.SetEntry"/> writes are counted.</summary>
        internal static bool WritesEnabled => Splits.Enabled || EntryWrites.Enabled;

        /// <summary>The calling thread's counters (registered on first use).</summary>
        internal static Counters Current
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => t_counters ?? Register();
        }

        /// <summary>Counts one walk and its outcome (call when <see cref="WalksEnabled"/>).</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static void CountWalk(EptStatus status)
        {
            Counters c = Current;
            c.Translations++;
            if (status == EptStatus.Violation)
            {
                c.Violations++;
            }
            else if (status == EptStatus.Misconfig)
            {
                c.Misconfigs++;
            }
        }

        /// <summary>Counts a batch of walks and their outcomes (call when <see cref="WalksEnabled"/>).</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static void CountWalks(ReadOnlySpan<EptTranslation> results)
        {
            long violations = 0;
            long misconfigs = 0;
            foreach (ref readonly EptTranslation t in results)
            {
                violations += t.Status == EptStatus.Violation ? 1 : 0;
                misconfigs += t.Status == EptStatus.Misconfig ? 1 : 0;
            }

            Counters c = Current;
            c.Translations += results.Length;
            c.Violations += violations;
            c.Misconfigs += misconfigs;
        }

        /// <summary>Counts one published <see cref="P2m.SetEntry"/> write that split <paramref name="splits"/> superpages.</summary>
        internal static void CountWrite(int splits)
        {
            if (WritesEnabled)
            {
                Counters c = Current;
                c.EntryWrites++;
                c.Splits += splits;
            }
        }

        /// <summary>The sum of one field over every thread's node (monotonic).</summary>
        internal static long Sum(Func<Counters, long> field)
        {
            long total = 0;
            for (Counters? c = Volatile.Read(ref s_head); c is not null; c = c.Next)
            {
                total += field(c);
            }

            return total;
        }

        /// <summary>The sum of one field over every software TLB's node (monotonic).</summary>
        internal static long SumTlbs(Func<TlbCounters, long> field)
        {
            long total = 0;
            for (TlbCounters? c = Volatile.Read(ref s_tlbHead); c is not null; c = c.Next)
            {
                total += field(c);
            }

            return total;
        }

        /// <summary>
        /// The node that counts <paramref name="tlb"/>'s hits and misses: one whose TLB was
        /// collected (it can never write again; its counts stay), else a new one.
        /// </summary>
        internal static TlbCounters RegisterTlb(SoftTlb tlb)
        {
            var me = new WeakReference(tlb);
            for (TlbCounters? c = Volatile.Read(ref s_tlbHead); c is not null; c = c.Next)
            {
                WeakReference owner = Volatile.Read(ref c.Owner);
                if (owner.Target is null && Interlocked.CompareExchange(ref c.Owner, me, owner) == owner)
                {
                    return c;
                }
            }

            var node = new TlbCounters(me);
            TlbCounters? head;
            do
            {
                head = Volatile.Read(ref s_tlbHead);
                node.Next = head;
            }
            while (Interlocked.CompareExchange(ref s_tlbHead, node, head) != head);

            return node;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static Counters Register()
        {
            Thread me = Thread.CurrentThread;
            // Adopt the node of an exited thread: it never writes again, and its counts stay.
            for (Counters? c = Volatile.Read(ref s_head); c is not null; c = c.Next)
            {
                Thread owner = Volatile.Read(ref c.Owner);
                if (!owner.IsAlive && Interlocked.CompareExchange(ref c.Owner, me, owner) == owner)
                {
                    t_counters = c;
                    return c;
                }
            }

            var node = new Counters(me);
            Counters? head;
            do
            {
                head = Volatile.Read(ref s_head);
                node.Next = head;
            }
            while (Interlocked.CompareExchange(ref s_head, node, head) != head);

            t_counters = node;
            return node;
        }

        /// <summary>One thread's counters: written by the owner only (plain adds), read by anyone.</summary>
        internal sealed class Counters
        {
            internal Thread Owner;
            internal Counters? Next;
            internal long Translations;
            internal long Violations;
            internal long Misconfigs;
            internal long Splits;
            internal long EntryWrites;

            internal Counters(Thread owner) => Owner = owner;
        }

        /// <summary>
        /// One software TLB's lifetime hits and misses: written by the TLB's (single) user with
        /// plain adds, as its own counters always were, read by anyone.
        /// </summary>
        internal sealed class TlbCounters
        {
            internal WeakReference Owner;
            internal TlbCounters? Next;
            internal long Hits;
            internal long Misses;

            internal TlbCounters(WeakReference owner) => Owner = owner;
        }
    }
}
