// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;

namespace FastEpt.Internal
{
    /// <summary>
    /// Owns one contiguous range of native memory, reserved lazily (pages are committed by the
    /// kernel on first touch) and, on Linux, 2 MiB-aligned and advised for transparent huge
    /// pages. This is one of the few types that holds a raw pointer.
    /// </summary>
    internal sealed unsafe partial class NativeRegion : IDisposable
    {
        private const nuint HugePageSize = 2 << 20;

        private byte* _mapping;     // what the OS returned (unmapped on dispose)
        private readonly nuint _mappingLength;
        private readonly bool _isMapped;    // mmap/VirtualAlloc rather than NativeMemory

        public NativeRegion(ulong length)
        {
            Length = length;
            if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD())
            {
                // Over-reserve by one huge page so the base can be 2 MiB aligned; MAP_NORESERVE
                // keeps a 64 GiB reservation from being charged up front.
                _mappingLength = checked((nuint)length + HugePageSize);
                int flags = OperatingSystem.IsLinux() ? LinuxMapPrivate | LinuxMapAnonymous | LinuxMapNoReserve : BsdMapPrivate | BsdMapAnon;
                void* p = Mmap(null, _mappingLength, ProtRead | ProtWrite, flags, -1, 0);
                if (p == MapFailed)
                {
                    throw new InsufficientMemoryException($"Could not reserve {length} bytes of host memory (mmap errno {Marshal.GetLastPInvokeError()}).");
                }

                _mapping = (byte*)p;
                _isMapped = true;
                Base = (byte*)(((nuint)p + HugePageSize - 1) & ~(HugePageSize - 1));
                if (OperatingSystem.IsLinux())
                {
                    // Best effort: walks over huge-page-backed tables take fewer TLB misses.
                    _ = Madvise(Base, (nuint)length, LinuxMadvHugePage);
                }
            }
            else if (OperatingSystem.IsWindows())
            {
                _mappingLength = (nuint)length;
                void* p = VirtualAlloc(null, _mappingLength, MemReserve | MemCommit, PageReadWrite);
                if (p == null)
                {
                    throw new InsufficientMemoryException($"Could not reserve {length} bytes of host memory (VirtualAlloc error {Marshal.GetLastPInvokeError()}).");
                }

                _mapping = (byte*)p;
                _isMapped = true;
                Base = (byte*)p;
            }
            else
            {
                _mappingLength = (nuint)length;
                _mapping = (byte*)NativeMemory.AlignedAlloc(_mappingLength, 4096);
                NativeMemory.Clear(_mapping, _mappingLength);
                Base = _mapping;
            }
        }

        ~NativeRegion() => Release();

        /// <summary>The usable base address (page aligned).</summary>
        public byte* Base { get; private set; }

        /// <summary>The usable length in bytes.</summary>
        public ulong Length { get; }

        /// <summary>
        /// Makes [offset, offset+length) read as zero again. On Linux, large ranges are handed back
        /// to the kernel (MADV_DONTNEED on private anonymous memory refills with zeros) instead of
        /// being written.
        /// </summary>
        public void Zero(ulong offset, ulong length)
        {
            Debug.Assert(offset + length <= Length);
            if (OperatingSystem.IsLinux() && length >= HugePageSize && (offset & 4095) == 0 && (length & 4095) == 0)
            {
                if (Madvise(Base + offset, (nuint)length, LinuxMadvDontNeed) == 0)
                {
                    return;
                }
            }

            NativeMemory.Clear(Base + offset, (nuint)length);
        }

        public void Dispose()
        {
            Release();
            GC.SuppressFinalize(this);
        }

        private void Release()
        {
            byte* mapping = _mapping;
            if (mapping == null)
            {
                return;
            }

            _mapping = null;
            Base = null;
            if (!_isMapped)
            {
                NativeMemory.AlignedFree(mapping);
            }
            else if (OperatingSystem.IsWindows())
            {
                _ = VirtualFree(mapping, 0, MemRelease);
            }
            else
            {
                _ = Munmap(mapping, _mappingLength);
            }
        }

        private const int ProtRead = 1;
        private const int ProtWrite = 2;
        private const int LinuxMapPrivate = 0x02;
        private const int LinuxMapAnonymous = 0x20;
        private const int LinuxMapNoReserve = 0x4000;
        private const int BsdMapPrivate = 0x02;
        private const int BsdMapAnon = 0x1000;
        private const int LinuxMadvDontNeed = 4;
        private const int LinuxMadvHugePage = 14;
        private static readonly void* MapFailed = unchecked((void*)-1);
        private const uint MemCommit = 0x1000;
        private const uint MemReserve = 0x2000;
        private const uint MemRelease = 0x8000;
        private const uint PageReadWrite = 0x04;

        [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
        private static partial void* Mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

        [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
        private static partial int Munmap(void* addr, nuint length);

        [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
        private static partial int Madvise(void* addr, nuint length, int advice);

        [LibraryImport("kernel32", EntryPoint = "VirtualAlloc", SetLastError = true)]
        private static partial void* VirtualAlloc(void* address, nuint size, uint allocationType, uint protect);

        [LibraryImport("kernel32", EntryPoint = "VirtualFree", SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        private static partial bool VirtualFree(void* address, nuint size, uint freeType);
    }
}
