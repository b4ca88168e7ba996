// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Runtime.CompilerServices;
using static FastEpt.Interop.FastEptNative;
using NativeAccess = FastEpt.P2m.NativeAccess;

namespace FastEpt.Interop
{
    // C read sections (fastept_read_enter / fastept_read_exit in fastept.h): the native library's
    // slots are handed to the managed epoch reclaimer once, when the library is loaded.
    public sealed unsafe partial class NativeWalker
    {
        /// <summary>
        /// Loads the native library (checking its ABI) and hands its read-section slots to the
        /// managed epoch reclaimer, so C code that walks a managed <see cref="FastEpt.P2m"/>'s tables
        /// between <c>fastept_read_enter</c> and <c>fastept_read_exit</c> never sees a table freed
        /// under it. Creating any <see cref="NativeWalker"/> does this too; call it before C code
        /// opens its first section when no walker exists yet. Idempotent and thread-safe.
        /// </summary>
        /// <exception cref="DllNotFoundException">The native library could not be loaded.</exception>
        /// <exception cref="InvalidOperationException">The native library's ABI differs from the bindings'.</exception>
        public static void RegisterReadSections() => EnsureNative();

        private static void RegisterReadSectionsOnce()
        {
            fastept_read_state state;
            fastept_read_state_get(&state);
            NativeAccess.RegisterReadSections((nint)state.slots, (int)state.slot_count, (int)state.stride, (nint)state.epoch, (nint)state.shared);
        }

        /// <summary>
        /// The native walk of <see cref="Translate"/> without the managed read section around it:
        /// for a caller that brackets it with <c>fastept_read_enter</c>/<c>fastept_read_exit</c>
        /// itself, as C code does (tests race such a reader against a managed writer).
        /// </summary>
        internal EptTranslation TranslateInCallerSection(ulong gpa, AccessKind access)
        {
            fastept_translation t;
            fixed (fastept_walker* w = &_walker)
            {
                t = fastept_translate(w, gpa, (uint)access);
            }

            return Unsafe.As<fastept_translation, EptTranslation>(ref t);
        }
    }
}
