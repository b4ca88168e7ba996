// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace FastEpt.Interop.Internal
{
    /// <summary>
    /// The exceptions FastEpt.Interop throws for bad arguments and disposed objects, built here
    /// so the walks hold only a call to a never-inlined, never-returning method. Messages and
    /// parameter names are those of the managed walker's, so a <see cref="NativeWalker"/> call
    /// fails exactly as the matching <see cref="P2m"/> call does.
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
        public static void ThrowObjectDisposedException(object instance)
            => throw new ObjectDisposedException(instance.GetType().FullName);

        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void ThrowInsufficientMemoryException_frames()
            => throw new InsufficientMemoryException("Host memory has no free frame left.");
    }
}
