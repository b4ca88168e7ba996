// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;

namespace FastEpt.Bench
{
    public partial class Perf_Concurrency
    {
        /// <summary>
        /// The readers' and writers' guest: <see cref="DefaultGuest"/> (4 GiB in 4K pages). Readers
        /// translate random GPAs over the lower 2 GiB, which no writer touches, and check every
        /// answer; the writers work in the upper half: the 4K remapper over [2 GiB, 3 GiB), the
        /// merge/split writer over <see cref="MergeSplitRegions"/> 2 MiB regions from 3 GiB.
        /// </summary>
        /// <remarks>
        /// One writer loop at a time (the cursors are plain fields); any number of readers.
        /// The loops that run for a duration check the clock every <see cref="ClockStride"/> steps.
        /// </remarks>
        internal sealed class Scenario : IDisposable
        {
            /// <summary>GPAs per reader call (one batch, or one window of scalar translations).</summary>
            public const int Ops = 4096;

            /// <summary>2 MiB regions the merge/split writer cycles through.</summary>
            public const int MergeSplitRegions = 64;

            /// <summary>SetEntry calls per region visit of the merge/split writer.</summary>
            public const int MergeSplitWritesPerVisit = 6;

            private const int ReaderPoolSize = 1 << 16;        // 512 KiB of GPAs, over 2 GiB of guest
            private const int ClockStride = 64;
            private const int Seed = 20260501;
            private const ulong HalfFrames = (ulong)DefaultGuest.GuestFrames / 2;
            private const ulong RemapFirst = HalfFrames;                    // [2 GiB, 3 GiB)
            private const ulong RemapFrames = HalfFrames / 2;
            private const ulong MergeSplitFirst = HalfFrames + RemapFrames; // 3 GiB

            private readonly DefaultGuest _guest;
            private readonly ulong[] _gpas;
            private readonly ulong[] _remapGfns;       // a permutation of the remap range: no GFN twice per pass
            private readonly ulong[] _casSlots;        // the CAS-publish baseline's private "table"
            private readonly EptTranslation[] _results = new EptTranslation[Ops];
            private readonly ulong _offset;            // HPA - GPA of every lower-half page
            private readonly ulong _mfn2M;             // a 2 MiB-aligned MFN run for the merges
            private int _readCursor;
            private long _remapCursor;
            private long _casCursor;
            private long _mergeCursor;

            private Scenario(DefaultGuest guest)
            {
                _guest = guest;
                _offset = guest.FirstMfn << DefaultGuest.PageBits;
                _mfn2M = (guest.FirstMfn + 511) & ~511UL;
                var random = new Random(Seed);
                _gpas = new ulong[ReaderPoolSize];
                for (int i = 0; i < _gpas.Length; i++)
                {
                    ulong gfn = (ulong)random.NextInt64((long)HalfFrames);
                    _gpas[i] = (gfn << DefaultGuest.PageBits) | (uint)random.Next(DefaultGuest.PageSize);
                }

                _remapGfns = new ulong[RemapFrames];
                for (ulong i = 0; i < RemapFrames; i++)
                {
                    _remapGfns[i] = RemapFirst + i;
                }

                random.Shuffle(_remapGfns);
                _casSlots = new ulong[DefaultGuest.GuestFrames];
            }

            /// <summary>The p2m under test.</summary>
            public P2m P2m => _guest.P2m;

            /// <summary>One line for reports.</summary>
            public static string Describe =>
                $"{DefaultGuest.GuestRamBytes >> 30} GiB guest in 4K pages; readers: random GPAs over the lower {DefaultGuest.GuestRamBytes >> 31} GiB; "
                + $"writers: 4K remaps over [2 GiB, 3 GiB), merges/splits/removals over {MergeSplitRegions} 2 MiB regions from 3 GiB";

            /// <summary>Builds the guest (a second or two).</summary>
            public static Scenario Create() => new(DefaultGuest.Create());

            /// <summary>Releases the guest.</summary>
            public void Dispose() => _guest.Dispose();

            /// <summary>One <see cref="P2m.TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/> (Auto) of the next <see cref="Ops"/> GPAs, checked.</summary>
            public ulong BatchOnce()
            {
                ReadOnlySpan<ulong> window = NextWindow();
                P2m.TranslateBatch(window, AccessKind.Read, _results);
                ulong bad = 0;
                for (int i = 0; i < window.Length; i++)
                {
                    bad |= (_results[i].Hpa - window[i]) ^ _offset;    // 0 for every right answer
                }

                return Check(bad, _results[^1].Hpa);
            }

            /// <summary><see cref="P2m.Translate"/> of the next <see cref="Ops"/> GPAs, one by one, checked.</summary>
            public ulong ScalarOnce()
            {
                ReadOnlySpan<ulong> window = NextWindow();
                P2m p2m = P2m;
                ulong bad = 0;
                ulong sum = 0;
                for (int i = 0; i < window.Length; i++)
                {
                    ulong hpa = p2m.Translate(window[i], AccessKind.Read).Hpa;
                    bad |= (hpa - window[i]) ^ _offset;
                    sum += hpa;
                }

                return Check(bad, sum);
            }

            /// <summary>Runs batches (or scalar windows) for <paramref name="seconds"/>; returns GPAs translated and seconds taken.</summary>
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            public (long Count, double Seconds) ReadFor(bool batch, double seconds, ref ulong sink)
            {
                long start = Stopwatch.GetTimestamp();
                long end = start + (long)(seconds * Stopwatch.Frequency);
                long calls = 0;
                long now;
                do
                {
                    sink += batch ? BatchOnce() : ScalarOnce();
                    calls++;
                    now = Stopwatch.GetTimestamp();
                }
                while (now < end);

                return (calls * Ops, (now - start) / (double)Stopwatch.Frequency);
            }

            /// <summary>
            /// 4K remaps over [2 GiB, 3 GiB) in a fixed random order, each GFN's MFN alternating
            /// between two values pass by pass (so every call changes an entry) until
            /// <paramref name="stop"/>; returns the SetEntry calls made.
            /// </summary>
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            public long Remap4K(Func<bool> stop)
            {
                P2m p2m = P2m;
                ulong firstMfn = _guest.FirstMfn;
                long cursor = _remapCursor;
                long start = cursor;
                do
                {
                    for (int k = 0; k < ClockStride; k++, cursor++)
                    {
                        ulong gfn = _remapGfns[cursor % _remapGfns.Length];
                        ulong pass = (ulong)(cursor / _remapGfns.Length);
                        p2m.SetEntry(gfn, firstMfn + gfn + (pass & 1), PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                    }
                }
                while (!stop());

                _remapCursor = cursor;
                return cursor - start;
            }

            /// <summary>
            /// The no-lock floor of <see cref="Remap4K"/>: the same GFN sequence, each "write" one
            /// compare-exchange on a private array as large as the guest's leaf entries.
            /// </summary>
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            public long CasPublish(Func<bool> stop)
            {
                ulong[] slots = _casSlots;
                long cursor = _casCursor;
                long start = cursor;
                do
                {
                    for (int k = 0; k < ClockStride; k++, cursor++)
                    {
                        ref ulong slot = ref slots[_remapGfns[cursor % _remapGfns.Length]];
                        ulong pte = Volatile.Read(ref slot);
                        Interlocked.CompareExchange(ref slot, pte ^ 1, pte);
                    }
                }
                while (!stop());

                _casCursor = cursor;
                return cursor - start;
            }

            /// <summary>
            /// The merge/split-heavy writer: visits the <see cref="MergeSplitRegions"/> regions in
            /// turn; each visit merges the region into a 2M page (replacing its 4K table), splits
            /// it again with a 4K remap, removes a 4K page, removes the whole 2M region (replacing
            /// the table again), maps a 4K page into the empty region (a new table) and remaps it:
            /// <see cref="MergeSplitWritesPerVisit"/> SetEntry calls, two of them unlinking a table.
            /// Returns the SetEntry calls made.
            /// </summary>
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            public long MergeSplit(Func<bool> stop)
            {
                P2m p2m = P2m;
                ulong firstMfn = _guest.FirstMfn;
                long visits = 0;
                do
                {
                    ulong region = (ulong)(_mergeCursor++ % MergeSplitRegions);
                    ulong gfn = MergeSplitFirst + (region << 9);
                    p2m.SetEntry(gfn, _mfn2M + gfn, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
                    p2m.SetEntry(gfn + 5, firstMfn + gfn + 6, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                    p2m.SetEntry(gfn + 7, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
                    p2m.SetEntry(gfn, Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.N);
                    p2m.SetEntry(gfn + 9, firstMfn + gfn + 9, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                    p2m.SetEntry(gfn + 9, firstMfn + gfn + 10, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                    visits++;
                }
                while ((visits % (ClockStride / MergeSplitWritesPerVisit)) != 0 || !stop());

                return visits * MergeSplitWritesPerVisit;
            }

            /// <summary>A thread that never touches FastEpt: a register-only loop, the reference interference.</summary>
            public static long Spin(Func<bool> stop)
            {
                ulong x = 1;
                long n = 0;
                while (!stop())
                {
                    for (int i = 0; i < 1024; i++)
                    {
                        x = (x * 6364136223846793005UL) + 1442695040888963407UL;
                    }

                    n++;
                }

                return n + (long)(x & 1);
            }

            /// <summary>Runs <paramref name="loop"/> on this thread for <paramref name="seconds"/>; returns its count and the seconds taken.</summary>
            public static (long Count, double Seconds) RunFor(Func<Func<bool>, long> loop, double seconds)
            {
                long start = Stopwatch.GetTimestamp();
                long end = start + (long)(seconds * Stopwatch.Frequency);
                long count = loop(() => Stopwatch.GetTimestamp() >= end);
                return (count, (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency);
            }

            private ReadOnlySpan<ulong> NextWindow()
            {
                int cursor = _readCursor;
                _readCursor = (cursor + Ops) & (ReaderPoolSize - 1);
                return _gpas.AsSpan(cursor, Ops);
            }

            private static ulong Check(ulong bad, ulong result)
            {
                if (bad != 0)
                {
                    throw new InvalidOperationException("A reader got a wrong translation for a page no writer touches.");
                }

                return result;
            }
        }
    }
}
