#!/bin/sh
# Fake get.k3s.io installer (run as "sh -s - <server|agent>", or from a file when air-gapped):
# records its version, role and INSTALL_K3S_SKIP_DOWNLOAD, and "installs" the binary (version
# file), the service (unit + active) and the uninstall script, as the real installer does.
role=$1
service=k3s
uninstall=k3s-uninstall.sh
if [ "$role" = agent ]; then
  service=k3s-agent
  uninstall=k3s-agent-uninstall.sh
fi
echo "installer $role INSTALL_K3S_VERSION=$INSTALL_K3S_VERSION${INSTALL_K3S_SKIP_DOWNLOAD:+ INSTALL_K3S_SKIP_DOWNLOAD=$INSTALL_K3S_SKIP_DOWNLOAD}" >>"$FAKE_LOG"
# A real installer takes a while: with $FAKE_STATE/slow, long enough to look at `ps` meanwhile.
if [ -e "$FAKE_STATE/slow" ]; then /bin/sleep 2; fi
mkdir -p "$FAKE_STATE/units" "$FAKE_STATE/active" "$FAKE_ROOT/usr/local/bin"
echo "$INSTALL_K3S_VERSION" >"$FAKE_STATE/k3s-version"
touch "$FAKE_STATE/units/$service" "$FAKE_STATE/active/$service"
# The started k3s registers its node (the tests share one state dir as "the cluster").
name=$(sed -n 's/^node-name: //p' "$FAKE_ROOT/etc/rancher/k3s/config.yaml")
mkdir -p "$FAKE_STATE/nodes"
touch "$FAKE_STATE/nodes/$name"
cat >"$FAKE_ROOT/usr/local/bin/$uninstall" <<UNINSTALL
#!/bin/sh
echo "$uninstall" >>"\$FAKE_LOG"
rm -rf "\$FAKE_STATE/units/$service" "\$FAKE_STATE/active/$service" "\$FAKE_STATE/k3s-version" "\$FAKE_ROOT/etc/rancher/k3s"
rm -f "\$0"
UNINSTALL
chmod +x "$FAKE_ROOT/usr/local/bin/$uninstall"
