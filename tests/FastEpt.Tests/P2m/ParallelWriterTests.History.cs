// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class ParallelWriterTests
    {
        /// <summary>
        /// The unconditional writes of one GFN with their real-time intervals (global ticks taken
        /// before the call and after its return). A write W is certainly overwritten at the end of
        /// the first write that started after W returned; a value read during [start, end] is
        /// explained by a write (or the initial 1G PoD state, or a populate or fault that can only
        /// follow such a write) that started before the read ended and was not certainly
        /// overwritten before it began. The final value must come from a write no other write of
        /// the GFN certainly followed: the last write of some serial order that keeps every
        /// thread's own order (a thread's writes never overlap in time).
        /// </summary>
        private sealed class History
        {
            private readonly ulong _gfn;
            private readonly List<Op> _writes;
            private readonly long[] _overwrittenAt;       // per write: when it was certainly overwritten
            private readonly long _initialOverwrittenAt;
            private readonly Dictionary<ulong, List<int>> _byMfn = new();
            private readonly List<int> _pod = new();
            private readonly List<int> _holes = new();
            private readonly HashSet<ulong> _pool;

            public History(ulong gfn, List<Op> writes, HashSet<ulong> pool)
            {
                _gfn = gfn;
                _writes = writes;
                _pool = pool;
                Op[] byStart = writes.OrderBy(w => w.Start).ToArray();
                long[] suffixMinEnd = new long[byStart.Length + 1];
                suffixMinEnd[byStart.Length] = long.MaxValue;
                for (int i = byStart.Length - 1; i >= 0; i--)
                {
                    suffixMinEnd[i] = Math.Min(suffixMinEnd[i + 1], byStart[i].End);
                }

                long[] starts = byStart.Select(w => w.Start).ToArray();
                _overwrittenAt = new long[writes.Count];
                for (int i = 0; i < writes.Count; i++)
                {
                    int first = Array.BinarySearch(starts, writes[i].End + 1);
                    first = first < 0 ? ~first : first;
                    _overwrittenAt[i] = suffixMinEnd[first];
                    Val v = writes[i].ValueAt(gfn);
                    if (!v.Mapped)
                    {
                        _holes.Add(i);
                    }
                    else if (v == Val.Pod)
                    {
                        _pod.Add(i);
                    }
                    else
                    {
                        if (!_byMfn.TryGetValue(v.Mfn, out List<int>? list))
                        {
                            _byMfn[v.Mfn] = list = new List<int>();
                        }

                        list.Add(i);
                    }
                }

                _initialOverwrittenAt = suffixMinEnd[0];
            }

            public bool Explains(Val v, long readStart, long readEnd, bool final)
            {
                bool Live(int i) => _writes[i].Start < readEnd && (final ? _overwrittenAt[i] == long.MaxValue : _overwrittenAt[i] >= readStart);

                bool populated = v.Mapped && v.Type == P2mType.RamRw && v.Access == P2mAccess.RWX && _pool.Contains(v.Mfn);
                if (v == Val.Pod || populated)
                {
                    if (final ? _initialOverwrittenAt == long.MaxValue : _initialOverwrittenAt >= readStart)
                    {
                        return true;
                    }

                    if (_pod.Exists(Live))
                    {
                        return true;
                    }
                }

                if (!v.Mapped)
                {
                    return _holes.Exists(Live);
                }

                return _byMfn.TryGetValue(v.Mfn, out List<int>? same)
                       && same.Exists(i => Live(i) && (_writes[i].ValueAt(_gfn) == v || ModelRun.IsFaultDerived(_writes[i].ValueAt(_gfn), v)));
            }
        }
    }
}
