from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'nginx.conf.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_port = resolve('port')
    l_0_jwks_dir = resolve('jwks_dir')
    l_0_jwks_key = resolve('jwks_key')
    try:
        t_1 = environment.filters['int']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'int' found.")
    pass
    yield '# nginx.conf for `jwksdeploy render --server nginx`: the JWKS at /jwks as application/json,\n# /healthz for the probes, `success` everywhere else (like remote-jwks-go). Written by\n# jwksdeploy; the root filesystem is read-only, so everything nginx writes goes to /tmp.\ndaemon off;\nworker_processes 1;\nworker_rlimit_nofile 8192;\npid /tmp/nginx.pid;\nerror_log stderr warn;\n\nevents {\n    worker_connections 4096;\n}\n\nhttp {\n    access_log /dev/stdout;\n    server_tokens off;\n    client_body_temp_path /tmp/client_temp;\n    proxy_temp_path /tmp/proxy_temp;\n    fastcgi_temp_path /tmp/fastcgi_temp;\n    uwsgi_temp_path /tmp/uwsgi_temp;\n    scgi_temp_path /tmp/scgi_temp;\n    keepalive_timeout 60s;\n    client_header_timeout 10s;\n    client_max_body_size 1k;\n\n    server {\n        listen '
    yield str(t_1((undefined(name='port') if l_0_port is missing else l_0_port)))
    yield ';\n\n        location = /jwks {\n            types { }\n            default_type application/json;\n            alias '
    yield str((undefined(name='jwks_dir') if l_0_jwks_dir is missing else l_0_jwks_dir))
    yield '/'
    yield str((undefined(name='jwks_key') if l_0_jwks_key is missing else l_0_jwks_key))
    yield ';\n            add_header Cache-Control "public, max-age=60";\n        }\n\n        location = /healthz {\n            default_type text/plain;\n            return 200 "ok";\n        }\n\n        location / {\n            default_type text/plain;\n            return 200 "success";\n        }\n    }\n}\n'

blocks = {}
debug_info = '27=21&32=23'