// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    // The MMIO cache of one HvmEmulation (Xen's per-vCPU mmio_cache, docs/model/mmio-cache.md): an
    // instruction's device bytes in up to `capacity` entries of `entryBytes` bytes, one per device
    // operand, keyed by the operand's starting linear address, direction and access tag. Entries
    // are allocated once and reused; not thread-safe (one per vCPU).
    internal sealed class MmioCache
    {
        private readonly Entry[] _entries;
        private int _used;

        public MmioCache(int capacity, int entryBytes)
        {
            EntryBytes = entryBytes;
            _entries = new Entry[capacity];
            for (int i = 0; i < capacity; i++)
            {
                _entries[i] = new Entry(entryBytes);
            }
        }

        // Entries an instruction may use (Xen: 3).
        public int Capacity => _entries.Length;

        // Bytes per entry (Xen: 64).
        public int EntryBytes { get; }

        // Entries in use by the current instruction (Xen's mmio_cache_count).
        public int Count => _used;

        // The entry of an operand: keyed by its starting linear address, never by an address
        // advanced past a page boundary, so both pieces of a split operand share it.
        public Entry? Find(ulong gla, bool write, AccessTag tag)
        {
            for (int i = 0; i < _used; i++)
            {
                Entry e = _entries[i];
                if (e.Gla == gla && e.Write == write && e.Tag == tag)
                {
                    return e;
                }
            }

            return null;
        }

        // A fresh entry for an operand whose device bytes start `skip` bytes in (after a RAM
        // prefix); null when every entry is in use or the skip leaves no room.
        public Entry? Create(ulong gla, bool write, AccessTag tag, int skip)
        {
            if (_used == _entries.Length || skip >= EntryBytes)
            {
                return null;
            }

            Entry e = _entries[_used++];
            e.Gla = gla;
            e.Write = write;
            e.Tag = tag;
            e.Skip = skip;
            e.Size = skip;
            return e;
        }

        // The instruction retired: every entry in use is wiped and free again.
        public void Clear()
        {
            for (int i = 0; i < _used; i++)
            {
                _entries[i].Clear();
            }

            _used = 0;
        }

        public sealed class Entry
        {
            public Entry(int bytes) => Buffer = new byte[bytes];

            public byte[] Buffer { get; }

            public ulong Gla { get; set; }

            public bool Write { get; set; }

            public AccessTag Tag { get; set; }

            public int Skip { get; set; }       // operand offset of the first device byte

            public int Size { get; set; }       // operand offset up to which the bytes are done (replayed on a retry)

            public void Clear()
            {
                Array.Clear(Buffer);
                Gla = 0;
                Skip = Size = 0;
            }
        }
    }
}
