// Scripts the scenario tests' "agents" run.

/**
 * A replica: maps the weights file it is given (argv[1]) and keeps it mapped, serves an
 * OpenAI-style /v1/models on a new loopback port, writes the port to argv[2] (when given),
 * lives argv[3] seconds (default 3), and meanwhile runs the command in argv[4:], if any (a
 * replica that starts another), waiting for it before it exits.
 */
export const replicaServer = [
  'import http.server, json, mmap, subprocess, sys, threading, time',
  'f = open(sys.argv[1], "rb")',
  'm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)',
  'class H(http.server.BaseHTTPRequestHandler):',
  '    def do_GET(self):',
  '        body = json.dumps({"object": "list", "data": [{"id": "replica", "object": "model"}]}).encode()',
  '        self.send_response(200); self.send_header("content-type", "application/json"); self.end_headers(); self.wfile.write(body)',
  '    def log_message(self, *a): pass',
  'srv = http.server.HTTPServer(("127.0.0.1", 0), H)',
  'open(sys.argv[2], "w").write(str(srv.server_address[1])) if len(sys.argv) > 2 else None',
  'threading.Thread(target=srv.serve_forever, daemon=True).start()',
  'kid = subprocess.Popen(sys.argv[4:]) if len(sys.argv) > 4 else None',
  'time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 3)',
  'kid and kid.wait()',
].join('\n');
