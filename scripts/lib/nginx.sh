# Shared by the scripts that run a throwaway nginx (sourced, not run).

# nginx_conf DIR WORKER_CONNECTIONS SERVER_DIRECTIVES: writes DIR/nginx.conf for an
# nginx in the foreground, one process, everything (pid, logs, temp files, docroot
# DIR/www) under DIR, no access log, one server block with SERVER_DIRECTIVES.
nginx_conf() {
    local dir=$1 conns=$2 server=$3
    mkdir -p "$dir/www" "$dir/logs"
    cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log;
events { worker_connections $conns; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  server {
    root $dir/www;
    $server
  }
}
CONF
}
