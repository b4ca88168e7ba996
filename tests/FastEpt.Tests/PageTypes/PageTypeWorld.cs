// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.PageTypes
{
    /// <summary>
    /// Host memory with guest page tables written into it, a <see cref="PageTypeTable"/> over it,
    /// and the test's own model of what it holds at the top level (references from Done gets,
    /// and pending puts), which the audit needs. Single-threaded use only (the concurrency tests
    /// call the table directly).
    /// </summary>
    internal sealed class PageTypeWorld : IDisposable
    {
        public const ulong Present = 1UL << 0;
        public const ulong Rw = 1UL << 1;
        public const ulong Ps = 1UL << 7;

        /// <summary>More calls than any operation here needs to finish: beyond it, a loop is not progressing.</summary>
        public const int MaxCalls = 100_000;

        public PageTypeWorld(int frames = 256)
        {
            Memory = new HostMemory((long)frames << 12);
            Table = new PageTypeTable(Memory);
        }

        public HostMemory Memory { get; }

        public PageTypeTable Table { get; }

        /// <summary>Top-level references the test holds (Done gets not yet put), per frame.</summary>
        public Dictionary<ulong, int> Held { get; } = new();

        /// <summary>The type each frame in <see cref="Held"/> was taken as (for the audit from the tables alone).</summary>
        public Dictionary<ulong, PageType> HeldTypes { get; } = new();

        // Frames whose last get through this world was interrupted or refused and not yet finished
        // or abandoned: while any exists, partial frames are history the tables cannot tell.
        private readonly HashSet<ulong> _unsettled = new();

        /// <summary>Top-level puts that returned Restart and are still pending, per frame.</summary>
        public Dictionary<ulong, int> Claims { get; } = new();

        public void Dispose() => Memory.Dispose();

        public ulong NewFrame() => Memory.AllocateFrame();

        public void SetEntry(ulong table, int index, ulong pte) => Memory.WriteUInt64((table << 12) + ((ulong)index << 3), pte);

        public ulong ReadEntry(ulong table, int index) => Memory.ReadUInt64((table << 12) + ((ulong)index << 3));

        /// <summary>Points entry <paramref name="index"/> of <paramref name="table"/> at <paramref name="frame"/> (present, R/W unless told otherwise).</summary>
        public void Link(ulong table, int index, ulong frame, bool writable = true)
            => SetEntry(table, index, (frame << 12) | Present | (writable ? Rw : 0));

        /// <summary>A new empty table frame whose entries at the given indexes point at the given frames.</summary>
        public ulong NewTable(params (int Index, ulong Frame)[] entries)
        {
            ulong t = NewFrame();
            foreach ((int index, ulong frame) in entries)
            {
                Link(t, index, frame);
            }

            return t;
        }

        public PageTypeState State(ulong mfn) => Table.GetState(mfn);

        /// <summary>GetPageType, keeping the top-level model up to date.</summary>
        public Progress Get(ulong mfn, PageType type, ref Preemption preemption)
        {
            Progress r = Table.GetPageType(mfn, type, ref preemption);
            if (r == Progress.Done)
            {
                Add(Held, mfn, 1);
                HeldTypes[mfn] = type;
                _unsettled.Remove(mfn);
            }
            else
            {
                _unsettled.Add(mfn);        // interrupted or refused: partial frames may be left until continued or put
            }

            return r;
        }

        public Progress Get(ulong mfn, PageType type)
        {
            Preemption p = Preemption.Never;
            return Get(mfn, type, ref p);
        }

        /// <summary>
        /// PutPageType, keeping the top-level model up to date: a pending put of ours is continued
        /// first; otherwise a partial frame is abandoned; otherwise one of our references is put.
        /// </summary>
        public Progress Put(ulong mfn, ref Preemption preemption)
        {
            bool claim = Claims.GetValueOrDefault(mfn) > 0;
            bool abandon = !claim && Table.GetState(mfn).Partial;
            Progress r = Table.PutPageType(mfn, ref preemption);
            if (abandon && r == Progress.Done)
            {
                _unsettled.Remove(mfn);
            }

            if (claim)
            {
                if (r == Progress.Done)
                {
                    Add(Claims, mfn, -1);
                }
            }
            else
            {
                if (!abandon)
                {
                    Add(Held, mfn, -1);
                }

                if (r == Progress.Restart)
                {
                    Add(Claims, mfn, 1);
                }
            }

            return r;
        }

        public Progress Put(ulong mfn)
        {
            Preemption p = Preemption.Never;
            return Put(mfn, ref p);
        }

        /// <summary>Puts until Done, with budget <paramref name="budget"/> per call (null: never preempted).</summary>
        public int PutToCompletion(ulong mfn, int? budget = null)
        {
            int calls = 0;
            while (true)
            {
                Preemption p = budget is int b ? Preemption.After(b) : Preemption.Never;
                Assert.True(++calls <= MaxCalls, $"no progress after {MaxCalls} calls");
                if (Put(mfn, ref p) == Progress.Done)
                {
                    return calls;
                }
            }
        }

        /// <summary>Every frame's state, for comparing two runs.</summary>
        public PageTypeState[] Snapshot()
        {
            var states = new PageTypeState[Memory.FrameCount];
            for (ulong f = 0; f < (ulong)states.Length; f++)
            {
                states[f] = Table.GetState(f);
            }

            return states;
        }

        /// <summary>Recounts every reference from scratch and compares it with the table (see <see cref="PageTypeAudit"/>).</summary>
        /// <remarks>With nothing interrupted or refused outstanding, the state is also recomputed from the tables alone.</remarks>
        public void Audit() => PageTypeAudit.Check(Memory, Table, Held, Claims, _unsettled.Count == 0 ? HeldTypes : null);

        /// <summary>Audits and checks that nothing at all is referenced or typed any more.</summary>
        public void AuditEmpty()
        {
            Assert.All(Held.Values, v => Assert.Equal(0, v));
            Assert.All(Claims.Values, v => Assert.Equal(0, v));
            Audit();
            for (ulong f = 0; f < (ulong)Memory.FrameCount; f++)
            {
                Assert.Equal(default, Table.GetState(f));
            }
        }

        private static void Add(Dictionary<ulong, int> map, ulong mfn, int delta)
        {
            int v = map.GetValueOrDefault(mfn) + delta;
            Assert.True(v >= 0, $"test model: negative count for frame 0x{mfn:X}");
            map[mfn] = v;
        }
    }
}
