# shellcheck shell=bash disable=SC2034 # local LOG_TAG is read by log() via dynamic scope
# Local certificate authority and a server certificate for 127.0.0.1/localhost.
# PostgreSQL serves it so upstream TLS can be tested; tests mint more
# certificates (e.g. for the gateway's own listeners) from the exported CA.

TLS_DIR=$PAMTRAIL_HOME/tls
TLS_CA_CERT=$TLS_DIR/ca.crt
TLS_CA_KEY=$TLS_DIR/ca.key
TLS_SERVER_CERT=$TLS_DIR/server.crt
TLS_SERVER_KEY=$TLS_DIR/server.key

tls_up() {
	local LOG_TAG=tls
	ensure_packages openssl
	ensure_dir "$TLS_DIR" 0700
	if [[ ! -s $TLS_CA_CERT || ! -s $TLS_CA_KEY ]]; then
		tls_new_ca
		# A new CA invalidates the server certificate signed by the old one.
		rm -f "$TLS_SERVER_CERT" "$TLS_SERVER_KEY"
	fi
	# Renew a week ahead so a long-lived checkout never serves an expired cert.
	if [[ ! -s $TLS_SERVER_CERT || ! -s $TLS_SERVER_KEY ]] ||
		! openssl x509 -checkend $((7 * 24 * 3600)) -noout -in "$TLS_SERVER_CERT" >/dev/null; then
		tls_new_server_cert
	fi
	{
		env_line PAMTRAIL_TLS_CA "$TLS_CA_CERT"
		env_line PAMTRAIL_TLS_CA_KEY "$TLS_CA_KEY"
		env_line PAMTRAIL_TLS_SERVER_CERT "$TLS_SERVER_CERT"
		env_line PAMTRAIL_TLS_SERVER_KEY "$TLS_SERVER_KEY"
	} | write_env_fragment tls
}

tls_new_ca() {
	log "creating local CA in $TLS_DIR"
	(
		umask 077
		openssl req -x509 -new -nodes -sha256 -days 3650 \
			-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-keyout "$TLS_CA_KEY.tmp" -out "$TLS_CA_CERT.tmp" \
			-subj "/O=pamtrail/CN=pamtrail local CA" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" \
			-addext "subjectKeyIdentifier=hash" >/dev/null 2>&1 &&
			mv -f "$TLS_CA_KEY.tmp" "$TLS_CA_KEY" && mv -f "$TLS_CA_CERT.tmp" "$TLS_CA_CERT"
	) || die "openssl failed to create the local CA"
}

tls_new_server_cert() {
	log "issuing server certificate for localhost/127.0.0.1"
	(
		umask 077
		local ext
		ext=$(mktemp) || exit 1
		trap 'rm -f "$ext" "$TLS_SERVER_KEY.csr"' EXIT
		cat >"$ext" <<-'EOF'
			basicConstraints = critical,CA:FALSE
			keyUsage = critical,digitalSignature,keyEncipherment
			extendedKeyUsage = serverAuth,clientAuth
			subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
			authorityKeyIdentifier = keyid
			subjectKeyIdentifier = hash
		EOF
		openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-keyout "$TLS_SERVER_KEY.tmp" -out "$TLS_SERVER_KEY.csr" \
			-subj "/O=pamtrail/CN=localhost" >/dev/null 2>&1 &&
			openssl x509 -req -sha256 -days 825 -in "$TLS_SERVER_KEY.csr" \
				-CA "$TLS_CA_CERT" -CAkey "$TLS_CA_KEY" -CAcreateserial -CAserial "$TLS_DIR/ca.srl" \
				-extfile "$ext" -out "$TLS_SERVER_CERT.tmp" >/dev/null 2>&1 &&
			mv -f "$TLS_SERVER_KEY.tmp" "$TLS_SERVER_KEY" && mv -f "$TLS_SERVER_CERT.tmp" "$TLS_SERVER_CERT"
	) || die "openssl failed to issue the server certificate"
}
