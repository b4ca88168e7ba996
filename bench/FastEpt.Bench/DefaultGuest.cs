// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;

namespace FastEpt.Bench
{
    /// <summary>
    /// The built-in default guest: 4 GiB of guest RAM mapped with 4 KiB pages, GFN <c>i</c> to
    /// MFN <c>FirstMfn + i</c>, as type <see cref="P2mType.RamRw"/> with <see cref="P2mAccess.RWX"/>.
    /// Owns its <see cref="HostMemory"/> and <see cref="FastEpt.P2m"/>; dispose it to release both.
    /// </summary>
    /// <remarks>
    /// Every entry is a 4 KiB leaf, so a translation is a full 4-level walk and the leaf tables
    /// hold 1,048,576 entries (8 MiB). Not thread-safe to create or dispose; the
    /// <see cref="FastEpt.P2m"/> itself may be read concurrently.
    /// </remarks>
    public sealed class DefaultGuest : IDisposable
    {
        /// <summary>log2 of the 4 KiB frame size.</summary>
        public const int PageBits = 12;

        /// <summary>The 4 KiB frame size in bytes.</summary>
        public const int PageSize = 1 << PageBits;

        /// <summary>Guest RAM in bytes (4 GiB).</summary>
        public const long GuestRamBytes = 4L << 30;

        /// <summary>Guest RAM in 4 KiB frames (1,048,576).</summary>
        public const long GuestFrames = GuestRamBytes >> PageBits;

        // Room for the EPT tables on top of guest RAM: 4 GiB of 4 KiB leaves needs 2,048 leaf
        // tables plus a handful of upper ones (about 8 MiB); 256 MiB leaves ample headroom.
        private const long TableReserveBytes = 256L << 20;

        private bool _disposed;

        private DefaultGuest(HostMemory memory, P2m p2m, ulong firstMfn)
        {
            Memory = memory;
            P2m = p2m;
            FirstMfn = firstMfn;
        }

        /// <summary>The host memory that backs guest RAM and the tables.</summary>
        public HostMemory Memory { get; }

        /// <summary>The guest's EPT hierarchy.</summary>
        public P2m P2m { get; }

        /// <summary>The MFN that backs GFN 0; guest RAM is one contiguous run from here.</summary>
        public ulong FirstMfn { get; }

        /// <summary>Builds the default guest. Takes a second or two: it writes 1,048,576 entries.</summary>
        public static DefaultGuest Create()
        {
            HostMemory memory = new HostMemory(GuestRamBytes + TableReserveBytes);
            P2m? p2m = null;
            try
            {
                ulong firstMfn = memory.AllocateFrames(GuestFrames);
                p2m = new P2m(memory);
                for (ulong gfn = 0; gfn < (ulong)GuestFrames; gfn++)
                {
                    p2m.SetEntry(gfn, firstMfn + gfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                }

                return new DefaultGuest(memory, p2m, firstMfn);
            }
            catch
            {
                p2m?.Dispose();
                memory.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Returns <paramref name="count"/> random guest-physical addresses inside the 4 GiB of
        /// guest RAM: a uniformly drawn frame plus a random byte offset below 4096. The same
        /// <paramref name="seed"/> always gives the same addresses.
        /// </summary>
        public static ulong[] RandomGpas(int count, int seed)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(count);

            Random random = new Random(seed);
            ulong[] gpas = new ulong[count];
            for (int i = 0; i < gpas.Length; i++)
            {
                ulong gfn = (ulong)random.NextInt64(GuestFrames);
                ulong offset = (ulong)random.Next(PageSize);
                gpas[i] = (gfn << PageBits) | offset;
            }

            return gpas;
        }

        /// <summary>
        /// Checks that every address in <paramref name="gpas"/> translates, for a read, to its
        /// identity-offset host address, and that <see cref="FastEpt.P2m.GetEntry"/> agrees, so a broken
        /// walker fails the benchmark instead of timing a wrong answer.
        /// </summary>
        /// <exception cref="InvalidOperationException">An address translates wrongly.</exception>
        public void Verify(ReadOnlySpan<ulong> gpas)
        {
            foreach (ulong gpa in gpas)
            {
                ulong gfn = gpa >> PageBits;
                ulong expectedHpa = ((FirstMfn + gfn) << PageBits) | (gpa & (PageSize - 1));
                EptTranslation translation = P2m.Translate(gpa, AccessKind.Read);
                if (translation.Status != EptStatus.Ok || translation.Hpa != expectedHpa)
                {
                    throw new InvalidOperationException(
                        $"Translate(0x{gpa:X}) gave {translation.Status} 0x{translation.Hpa:X}; expected Ok 0x{expectedHpa:X}.");
                }

                P2mEntry entry = P2m.GetEntry(gfn);
                if (entry.Mfn != FirstMfn + gfn || entry.Order != (int)PageOrder.Size4K)
                {
                    throw new InvalidOperationException(
                        $"GetEntry(0x{gfn:X}) gave MFN 0x{entry.Mfn:X} order {entry.Order}; expected 0x{FirstMfn + gfn:X} order 0.");
                }
            }
        }

        /// <summary>Disposes the P2m, then the host memory under it.</summary>
        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            P2m.Dispose();
            Memory.Dispose();
        }
    }
}
