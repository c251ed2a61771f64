#!/bin/sh
# Stand-in for the get.k3s.io installer (run as "sh -s - <server|agent>", or from a file when
# air-gapped): records its version, role and INSTALL_K3S_* switches, and "installs" the binary
# (unless INSTALL_K3S_SKIP_DOWNLOAD), the service (unit; started unless INSTALL_K3S_SKIP_START)
# and the uninstall script, as the real installer does.
role=$1
service=k3s
uninstall=k3s-uninstall.sh
if [ "$role" = agent ]; then
  service=k3s-agent
  uninstall=k3s-agent-uninstall.sh
fi
echo "installer $role INSTALL_K3S_VERSION=$INSTALL_K3S_VERSION${INSTALL_K3S_SKIP_DOWNLOAD:+ INSTALL_K3S_SKIP_DOWNLOAD=$INSTALL_K3S_SKIP_DOWNLOAD}${INSTALL_K3S_SKIP_START:+ INSTALL_K3S_SKIP_START=$INSTALL_K3S_SKIP_START}" >>"$FAKE_LOG"
# A real installer takes a while: with $FAKE_STATE/slow, long enough to look at `ps` meanwhile.
if [ -e "$FAKE_STATE/slow" ]; then /bin/sleep 2; fi
mkdir -p "$FAKE_STATE/units" "$FAKE_STATE/active" "$FAKE_ROOT/usr/local/bin"
if [ "$INSTALL_K3S_SKIP_DOWNLOAD" != true ]; then
  cp "$STANDINS/k3s" "$FAKE_ROOT/usr/local/bin/k3s"
  echo "$INSTALL_K3S_VERSION" >"$FAKE_STATE/k3s-version"
fi
touch "$FAKE_STATE/units/$service"
if [ "$INSTALL_K3S_SKIP_START" != true ]; then touch "$FAKE_STATE/active/$service"; fi
cat >"$FAKE_ROOT/usr/local/bin/$uninstall" <<UNINSTALL
#!/bin/sh
echo "$uninstall" >>"\$FAKE_LOG"
rm -rf "\$FAKE_STATE/units/$service" "\$FAKE_STATE/active/$service" "\$FAKE_ROOT/etc/rancher/k3s"
# As k3s's own: the binary and its data go unless the other role's install is still there.
[ -e "\$FAKE_ROOT/usr/local/bin/k3s-uninstall.sh" ] && [ "$uninstall" != k3s-uninstall.sh ] ||
  rm -rf "\$FAKE_ROOT/usr/local/bin/k3s" "\$FAKE_ROOT/var/lib/rancher/k3s"
rm -f "\$0"
UNINSTALL
chmod +x "$FAKE_ROOT/usr/local/bin/$uninstall"
