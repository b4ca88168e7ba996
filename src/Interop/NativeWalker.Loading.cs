// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Runtime.CompilerServices;
using static FastEpt.Interop.FastEptNative;
using NativeAccess = FastEpt.P2m.NativeAccess;

namespace FastEpt.Interop
{
    // Loading the native library once: the ABI version and the EptTranslation layout checks.
    public sealed unsafe partial class NativeWalker
    {
        // Loads the library and checks, once, that it speaks the bindings' ABI and that
        // EptTranslation can stand in for fastept_translation.
        private static void EnsureNative()
        {
            if (s_verified)
            {
                return;
            }

            uint version = LoadAbiVersion();
            if (version != FASTEPT_ABI_VERSION)
            {
                throw new InvalidOperationException($"The native FastEpt library (lib{LibraryName}.so) has ABI version {version}, but FastEpt.Interop was generated for ABI version {FASTEPT_ABI_VERSION}. Rebuild native/ with ./build.sh and regenerate the bindings (native/tools/gen_bindings.py) from the same fastept.h.");
            }

            CheckTranslationLayout();
            RegisterReadSectionsOnce();
            s_verified = true;
        }

        private static uint LoadAbiVersion()
        {
            try
            {
                return CallAbiVersion();
            }
            catch (DllNotFoundException e)
            {
                throw new DllNotFoundException($"The native FastEpt library (lib{LibraryName}.so) could not be loaded. Build native/ with ./build.sh (cmake into native/build); projects that reference FastEpt.Interop copy native/build/libfastept.so next to their assembly. {e.Message}", e);
            }
            catch (EntryPointNotFoundException e)
            {
                throw new InvalidOperationException($"lib{LibraryName}.so has no fastept_abi_version: it is not FastEpt's native library, or too old. Rebuild native/ with ./build.sh.", e);
            }
        }

        // Never inlined: a P/Invoke without GC transition binds its target when the calling
        // method is compiled, so a missing library must fail while compiling this method,
        // inside LoadAbiVersion's try, not while compiling whoever inlined it.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static uint CallAbiVersion() => fastept_abi_version();

        /// <summary>
        /// Checks that <see cref="EptTranslation"/> (private fields _hpa, _qualification, _status,
        /// _level) has the layout of <see cref="fastept_translation"/>, so a native result can be
        /// reinterpreted in place; throws <see cref="InvalidOperationException"/> if not.
        /// </summary>
        internal static void CheckTranslationLayout()
        {
            if (Unsafe.SizeOf<EptTranslation>() != sizeof(fastept_translation) || sizeof(fastept_translation) != 16)
            {
                throw new InvalidOperationException($"EptTranslation ({Unsafe.SizeOf<EptTranslation>()} bytes) and fastept_translation ({sizeof(fastept_translation)} bytes) differ in size.");
            }

            EptTranslation probe = NativeAccess.Translation(EptStatus.Misconfig, 0x0123_4567_89AB_C000, 3, 0x2D);
            fastept_translation n = Unsafe.As<EptTranslation, fastept_translation>(ref probe);
            if (n.hpa != probe.Hpa || n.qualification != probe.Qualification || n.status != (byte)probe.Status || n.level != probe.Level
                || n.reserved[0] != 0 || n.reserved[1] != 0)
            {
                throw new InvalidOperationException("EptTranslation's fields are not laid out as fastept_translation's (hpa, qualification, status, level).");
            }
        }
    }
}
