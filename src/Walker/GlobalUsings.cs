// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

global using System;
global using System.Diagnostics;
global using System.Runtime.CompilerServices;
global using System.Threading;
global using System.Collections.Generic;
