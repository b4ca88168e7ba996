// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics.CodeAnalysis;

namespace FastEpt.Internal
{
    /// <summary>
    /// Every exception FastEpt throws is built here, so hot paths hold only a call to a
    /// never-inlined, never-returning method.
    /// </summary>
    internal static class ThrowHelper
    {
        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ThrowArgumentOutOfRangeException(string paramName, object? actual, string message)
            => throw new ArgumentOutOfRangeException(paramName, actual, message);

        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ThrowArgumentException(string paramName, string message)
            => throw new ArgumentException(message, paramName);

        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ThrowArgumentOutOfRangeException_gpa(ulong gpa, int addressBits)
            => throw new ArgumentOutOfRangeException("gpa", $"0x{gpa:X}", $"The guest-physical address is beyond the configured {addressBits}-bit width.");

        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ThrowArgumentOutOfRangeException_gfn(ulong gfn, int addressBits)
            => throw new ArgumentOutOfRangeException("gfn", $"0x{gfn:X}", $"The guest frame number is beyond the configured {addressBits}-bit guest-physical width.");

        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ThrowArgumentOutOfRangeException_access(AccessKind access)
            => throw new ArgumentOutOfRangeException("access", access, "The access kind must be a non-empty combination of Read, Write and Execute.");

        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ThrowArgumentOutOfRangeException_hpa(ulong hpa, ulong length)
            => throw new ArgumentOutOfRangeException("hpa", $"0x{hpa:X}", $"The host-physical range of {length} bytes is outside host memory.");

        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ThrowArgumentOutOfRangeException_mfn(ulong mfn, long frameCount)
            => throw new ArgumentOutOfRangeException("mfn", $"0x{mfn:X}", $"The frame number is outside host memory ({frameCount} frames).");

        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ThrowArgumentException_results()
            => throw new ArgumentException("The results span is shorter than the address span.", "results");

        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ThrowObjectDisposedException(object instance)
            => throw new ObjectDisposedException(instance.GetType().FullName);

        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ThrowInsufficientMemoryException_frames()
            => throw new InsufficientMemoryException("Host memory has no free frame left.");
    }
}
