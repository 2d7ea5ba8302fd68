<#
.SYNOPSIS
  Installs or removes wsgated as a Windows service.

.DESCRIPTION
  Install: copies wsgated.exe (and wsgate-health.exe when present) to
  $env:ProgramFiles\wsgate, puts the default configuration at
  $env:ProgramData\wsgate\wsgated.toml unless one exists, and registers the service "wsgated"
  (automatic start, restart on failure) with the command line
      "<InstallDir>\wsgated.exe" --service --config "<ProgramData>\wsgate\wsgated.toml"
  Stop and shutdown controls drain sessions like SIGTERM does on Linux
  (timeouts.drain_ms). Logs: log.file, or $env:ProgramData\wsgate\logs\wsgated.log when empty.

  Uninstall: stops the service (waiting for the drain) and deletes it. The configuration and the
  logs are kept.

.EXAMPLE
  .\install-service.ps1 -BinaryDir .\build\service\daemon\Release
.EXAMPLE
  .\install-service.ps1 -Uninstall
#>
[CmdletBinding(DefaultParameterSetName = 'Install')]
param(
  [Parameter(ParameterSetName = 'Install')]
  [string]$BinaryDir = (Join-Path $PSScriptRoot '..\..\build\service\daemon'),
  [Parameter(ParameterSetName = 'Install')]
  [string]$InstallDir = (Join-Path $env:ProgramFiles 'wsgate'),
  [Parameter(ParameterSetName = 'Install')]
  [string]$ConfigFile = (Join-Path $env:ProgramData 'wsgate\wsgated.toml'),
  [Parameter(ParameterSetName = 'Install')]
  [string]$Account = 'NT AUTHORITY\LocalService',
  [Parameter(ParameterSetName = 'Uninstall', Mandatory = $true)]
  [switch]$Uninstall
)
$ErrorActionPreference = 'Stop'
$ServiceName = 'wsgated'

$principal = New-Object Security.Principal.WindowsPrincipal(
  [Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
  throw 'install-service.ps1 must run in an elevated PowerShell (Run as administrator).'
}

$existing = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue

if ($Uninstall) {
  if (-not $existing) { Write-Host "${ServiceName}: not installed"; exit 0 }
  if ($existing.Status -ne 'Stopped') {
    Stop-Service -Name $ServiceName   # waits for SERVICE_STOPPED (the drain)
  }
  & sc.exe delete $ServiceName | Out-Null
  if ($LASTEXITCODE -ne 0) { throw "sc.exe delete $ServiceName failed ($LASTEXITCODE)" }
  Write-Host "${ServiceName}: removed (configuration and logs kept in $env:ProgramData\wsgate)"
  exit 0
}

$exe = Join-Path $BinaryDir 'wsgated.exe'
if (-not (Test-Path $exe)) { throw "$exe not found: build first (cmake --preset windows-msvc)" }
if ($existing) {
  if ($existing.Status -ne 'Stopped') { Stop-Service -Name $ServiceName }
}

New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
Copy-Item $exe $InstallDir -Force
Get-ChildItem -Path $BinaryDir -Filter '*.dll' -ErrorAction SilentlyContinue |
  Copy-Item -Destination $InstallDir -Force
$probe = Join-Path $BinaryDir 'wsgate-health.exe'
if (Test-Path $probe) { Copy-Item $probe $InstallDir -Force }

$configDir = Split-Path $ConfigFile -Parent
New-Item -ItemType Directory -Force -Path $configDir, (Join-Path $configDir 'logs') | Out-Null
if (-not (Test-Path $ConfigFile)) {
  Copy-Item (Join-Path $PSScriptRoot '..\config\wsgated.example.toml') $ConfigFile
}
# The service account writes its logs and its socket under ProgramData\wsgate.
& icacls.exe $configDir /grant "${Account}:(OI)(CI)M" | Out-Null

$binPath = "`"$(Join-Path $InstallDir 'wsgated.exe')`" --service --config `"$ConfigFile`""
& "$InstallDir\wsgated.exe" --config $ConfigFile --check-config
if ($LASTEXITCODE -ne 0) { throw "the configuration $ConfigFile is not valid" }

if ($existing) {
  & sc.exe config $ServiceName binPath= $binPath start= auto obj= $Account | Out-Null
} else {
  New-Service -Name $ServiceName -BinaryPathName $binPath -DisplayName 'wsgate WebSocket gateway' `
    -Description 'WebSocket gateway daemon (gRPC API on a local socket)' `
    -StartupType Automatic | Out-Null
  & sc.exe config $ServiceName obj= $Account | Out-Null
}
# Restart after a crash: 5 s, 5 s, then 60 s; the failure count resets after a day.
& sc.exe failure $ServiceName reset= 86400 actions= restart/5000/restart/5000/restart/60000 | Out-Null
Start-Service -Name $ServiceName
Write-Host "${ServiceName}: installed and started ($binPath)"
