#!/usr/bin/env bash
# One command to set the appliance up.
#   On a Raspberry Pi (Raspberry Pi OS Bookworm, 64-bit), as root: the service. Debian packages,
#   a venv in /opt/appliance/venv, the system user `appliance`, I2C/SPI/UART, the default config
#   at /etc/appliance/config.toml (never overwritten), the systemd units, enabled and started.
#   Elsewhere (Debian 12 and friends): a developer / simulator set-up in ./.venv with the test
#   tools (and, as root, the Debian mosquitto broker the MQTT tests start on their own).
# Idempotent: safe to run again (after a `git pull`, it updates the service). Options:
#   --pi (force the Pi set-up), --dev (the developer set-up, also on a Pi), --dry-run (print each
#   step, change nothing), --uninstall (remove the service, keep the data and the config), --help.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

argv="$*"
dev=0; force_pi=0; dry=0; uninstall=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --pi) force_pi=1 ;;
    --dry-run) dry=1 ;;
    --uninstall) uninstall=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

prefix=/opt/appliance
venv="$prefix/venv"
etc=/etc/appliance
state=/var/lib/appliance
unit_dir=/etc/systemd/system
units=(appliance.service appliance-backstop.service appliance-backstop.timer appliance-tui@.service)
user=appliance
groups=(gpio i2c spi audio dialout)

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
# Every step that changes the machine goes through run: --dry-run prints it instead.
run() {
  if [ "$dry" = 1 ]; then printf '  would run:'; printf ' %q' "$@"; printf '\n'; else "$@"; fi
}
need_root() {
  if [ "$dry" = 0 ] && [ "$(id -u)" != 0 ]; then die "$1 needs root: sudo $0 $argv"; fi
}
# systemctl talks to a running systemd only when there is one (not in a container or chroot).
systemd_up() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
pkg_missing() { ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

# The board's name; APPLIANCE_DEVICE_MODEL names another file (the tests pretend a board).
model_file="${APPLIANCE_DEVICE_MODEL:-/proc/device-tree/model}"
model=""
[ -r "$model_file" ] && model="$(tr -d '\0' < "$model_file")"
is_pi=0
if [ "$force_pi" = 1 ] || [[ "$model" == "Raspberry Pi"* ]]; then is_pi=1; fi

# -- uninstall ---------------------------------------------------------------------------------
if [ "$uninstall" = 1 ]; then
  need_root "--uninstall"
  say "removing the appliance service (keeping the data in $state and the config in $etc)"
  if command -v systemctl >/dev/null 2>&1; then
    tui=()
    for link in "$unit_dir"/*.wants/appliance-tui@*.service; do
      [ -e "$link" ] && tui+=("$(basename "$link")")
    done
    now=(); systemd_up && now=(--now)
    run systemctl disable "${now[@]}" appliance.service appliance-backstop.timer "${tui[@]}" || true
  fi
  for u in "${units[@]}"; do run rm -f "$unit_dir/$u"; done
  if systemd_up; then run systemctl daemon-reload; fi
  run rm -rf "$prefix"
  if getent passwd "$user" >/dev/null 2>&1; then
    run userdel "$user"
  else
    say "no user $user: nothing to remove"
  fi
  say "kept $state (the nights) and $etc (the config): remove them by hand if you want them gone"
  exit 0
fi

# -- common checks -----------------------------------------------------------------------------
py="${PYTHON:-python3}"
command -v "$py" >/dev/null 2>&1 || die "$py not found; install python3 (3.11+)"
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  die "Python 3.11+ is needed, found $("$py" --version 2>&1)"
fi
case "$(uname -m)" in
  x86_64|aarch64|arm64) ;;
  *) die "$(uname -m) is not supported: onnxruntime needs a 64-bit OS (on a Pi: 64-bit Raspberry Pi OS)" ;;
esac

# apt_install PKG...: install the Debian packages that are missing (as root), else say which.
apt_install() {
  local missing=() p
  for p in "$@"; do if pkg_missing "$p"; then missing+=("$p"); fi; done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$dry" = 0 ] && { [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; }; then
    return 1
  fi
  say "installing Debian packages: ${missing[*]}"
  run apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# -- the Raspberry Pi service ------------------------------------------------------------------
pi_install() {
  need_root "the Pi set-up"
  say "Raspberry Pi set-up (${model:-forced with --pi})"
  local codename=""
  [ -r /etc/os-release ] && codename="$(sed -n "s/^VERSION_CODENAME=//p" /etc/os-release | tr -d "\"")"
  [ "$codename" = bookworm ] || say "warning: made for Raspberry Pi OS Bookworm, this is '${codename:-unknown}'"

  # python3-lgpio: gpiozero's GPIO back-end, packaged by Debian only (hence the system site
  # packages); python3-dev and gcc build rpi-ws281x (no aarch64 wheel); alsa-utils: aplay;
  # i2c-tools: i2cdetect, to see the sensors.
  apt_install python3-venv python3-dev gcc python3-lgpio alsa-utils i2c-tools \
    || die "please install: python3-venv python3-dev gcc python3-lgpio alsa-utils i2c-tools"

  if getent passwd "$user" >/dev/null 2>&1; then
    say "system user $user exists"
  else
    run useradd --system --user-group --home-dir "$state" --no-create-home \
      --shell /usr/sbin/nologin --comment "bedside sleep appliance" "$user"
  fi
  local g
  for g in "${groups[@]}"; do
    if getent group "$g" >/dev/null 2>&1; then
      run usermod -a -G "$g" "$user"
    else
      say "group $g does not exist here: skipped (its devices stay out of reach)"
    fi
  done

  if command -v raspi-config >/dev/null 2>&1; then
    say "enabling I2C, SPI and the UART (serial console off, so the radar can use it)"
    run raspi-config nonint do_i2c 0
    run raspi-config nonint do_spi 0
    run raspi-config nonint do_serial_hw 0
    run raspi-config nonint do_serial_cons 1
  else
    say "raspi-config not found: enable I2C, SPI and the UART yourself, in /boot/firmware/config.txt:"
    say "  dtparam=i2c_arm=on  dtparam=spi=on  enable_uart=1  (and no console=serial0 in cmdline.txt)"
  fi

  if [ -x "$venv/bin/python" ] && grep -qs '^include-system-site-packages = true' "$venv/pyvenv.cfg"; then
    say "reusing $venv"
  else
    run rm -rf "$venv"
    run "$py" -m venv --system-site-packages "$venv"
  fi
  say "installing the project with its pi extra into $venv"
  run "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  run "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${here}[pi]"
  run install -D -m 0644 docs/SERVICE.md "$prefix/docs/SERVICE.md"

  run install -d -m 0755 "$etc"
  if [ -e "$etc/config.toml" ]; then
    say "kept your $etc/config.toml (never overwritten; the shipped default is systemd/config.toml)"
  else
    run install -m 0640 -o root -g "$user" systemd/config.toml "$etc/config.toml"
  fi

  local was_active=0
  if systemd_up && systemctl is-active --quiet appliance.service; then was_active=1; fi
  local u
  for u in "${units[@]}"; do run install -m 0644 "systemd/$u" "$unit_dir/$u"; done
  if systemd_up; then
    run systemctl daemon-reload
    run systemctl enable --now appliance.service appliance-backstop.timer
    # enable --now leaves a running daemon on the old code: restart it onto the new one.
    if [ "$was_active" = 1 ]; then run systemctl restart appliance.service; fi
    say "done: systemctl status appliance   journalctl -u appliance -f   (docs: $prefix/docs/SERVICE.md)"
  else
    run systemctl enable appliance.service appliance-backstop.timer
    say "systemd is not running here: the units are enabled and start at the next boot"
  fi
  say "a reboot may be needed for I2C/SPI/UART changes to take effect"
}

# -- the developer / simulator set-up ----------------------------------------------------------
dev_install() {
  say "developer / simulator set-up in $here/.venv"
  if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv || die "please install the Debian package python3-venv first"
  fi
  # The MQTT tests start their own broker from the Debian package; the system one stays off.
  if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    if apt_install mosquitto; then
      if command -v systemctl >/dev/null 2>&1; then run systemctl disable --now mosquitto || true; fi
    else
      say "note: the MQTT tests need the mosquitto broker: sudo apt-get install mosquitto"
    fi
  fi
  if [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    say "reusing .venv"
  else
    say "creating .venv"
    run rm -rf .venv
    run "$py" -m venv .venv
  fi
  say "installing the project (.[dev]) into .venv"
  run .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  run .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
  if [ "$dry" = 0 ]; then say "installed: $(.venv/bin/appliance --version)"; fi
  say "done. Try:  .venv/bin/appliance simulate --alarm 07:00    and    .venv/bin/python -m pytest"
}

if [ "$is_pi" = 1 ]; then
  pi_install
  if [ "$dev" = 1 ]; then dev_install; fi
else
  say "not a Raspberry Pi${model:+ ($model)}"
  dev_install
fi
