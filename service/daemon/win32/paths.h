// Where wsgated keeps its files on Windows: %ProgramData%\wsgate (C:\ProgramData\wsgate when
// the variable is unset): the socket in run\ (default_socket_path(), config.h), the service's log
// (win32/service.h) and the configuration file that install-service.ps1 registers.
//
// Thread safety: plain functions (they read the environment).
#pragma once

#include <filesystem>

namespace wsgate::daemon::win32 {

std::filesystem::path program_data_dir();

}  // namespace wsgate::daemon::win32
