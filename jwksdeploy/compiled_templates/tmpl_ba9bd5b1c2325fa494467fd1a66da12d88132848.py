from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'deployment.yaml.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_name = resolve('name')
    l_0_namespace = resolve('namespace')
    l_0_labels = resolve('labels')
    l_0_annotations = resolve('annotations')
    l_0_replicas = resolve('replicas')
    l_0_selector = resolve('selector')
    l_0_pod_annotations = resolve('pod_annotations')
    l_0_image_pull_secrets = resolve('image_pull_secrets')
    l_0_container_name = resolve('container_name')
    l_0_image = resolve('image')
    l_0_image_pull_policy = resolve('image_pull_policy')
    l_0_command = resolve('command')
    l_0_args = resolve('args')
    l_0_container_port = resolve('container_port')
    l_0_probe_path = resolve('probe_path')
    l_0_resources = resolve('resources')
    l_0_config_mount = resolve('config_mount')
    l_0_config_sub_path = resolve('config_sub_path')
    l_0_writable_dirs = resolve('writable_dirs')
    l_0_configmap_name = resolve('configmap_name')
    l_0_h = missing
    try:
        t_1 = environment.filters['q']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'q' found.")
    pass
    l_0_h = context.vars['h'] = environment.get_template('_helpers.j2', 'deployment.yaml.j2')._get_default_module(context)
    context.exported_vars.discard('h')
    yield 'apiVersion: apps/v1\nkind: Deployment\n'
    yield str(context.call(environment.getattr((undefined(name='h') if l_0_h is missing else l_0_h), 'metadata'), (undefined(name='name') if l_0_name is missing else l_0_name), (undefined(name='namespace') if l_0_namespace is missing else l_0_namespace), (undefined(name='labels') if l_0_labels is missing else l_0_labels), (undefined(name='annotations') if l_0_annotations is missing else l_0_annotations)))
    yield '\nspec:\n  replicas: '
    yield str(t_1((undefined(name='replicas') if l_0_replicas is missing else l_0_replicas)))
    yield '\n  revisionHistoryLimit: 5\n  selector:\n    matchLabels: '
    yield str(t_1((undefined(name='selector') if l_0_selector is missing else l_0_selector)))
    yield '\n  template:\n    metadata:\n      labels: '
    yield str(t_1((undefined(name='labels') if l_0_labels is missing else l_0_labels)))
    yield '\n      annotations: '
    yield str(t_1((undefined(name='pod_annotations') if l_0_pod_annotations is missing else l_0_pod_annotations)))
    yield '\n    spec:\n      automountServiceAccountToken: false\n      enableServiceLinks: false\n      securityContext:\n        runAsNonRoot: true\n        runAsUser: 65534\n        runAsGroup: 65534\n        seccompProfile:\n          type: "RuntimeDefault"'
    if (undefined(name='image_pull_secrets') if l_0_image_pull_secrets is missing else l_0_image_pull_secrets):
        pass
        yield '\n      imagePullSecrets:'
        for l_1_secret in (undefined(name='image_pull_secrets') if l_0_image_pull_secrets is missing else l_0_image_pull_secrets):
            _loop_vars = {}
            pass
            yield '\n        - name: '
            yield str(t_1(l_1_secret))
        l_1_secret = missing
    if ((undefined(name='replicas') if l_0_replicas is missing else l_0_replicas) > 1):
        pass
        yield '\n      topologySpreadConstraints:\n        - maxSkew: 1\n          topologyKey: "kubernetes.io/hostname"\n          whenUnsatisfiable: "ScheduleAnyway"\n          labelSelector:\n            matchLabels: '
        yield str(t_1((undefined(name='selector') if l_0_selector is missing else l_0_selector)))
    yield '\n      containers:\n        - name: '
    yield str(t_1((undefined(name='container_name') if l_0_container_name is missing else l_0_container_name)))
    yield '\n          image: '
    yield str(t_1((undefined(name='image') if l_0_image is missing else l_0_image)))
    yield '\n          imagePullPolicy: '
    yield str(t_1((undefined(name='image_pull_policy') if l_0_image_pull_policy is missing else l_0_image_pull_policy)))
    yield '\n          command: '
    yield str(t_1((undefined(name='command') if l_0_command is missing else l_0_command)))
    yield '\n          args: '
    yield str(t_1((undefined(name='args') if l_0_args is missing else l_0_args)))
    yield '\n          ports:\n            - name: "http"\n              containerPort: '
    yield str(t_1((undefined(name='container_port') if l_0_container_port is missing else l_0_container_port)))
    yield '\n              protocol: "TCP"\n          readinessProbe:\n            httpGet:\n              path: '
    yield str(t_1((undefined(name='probe_path') if l_0_probe_path is missing else l_0_probe_path)))
    yield '\n              port: "http"\n            periodSeconds: 5\n            timeoutSeconds: 2\n          livenessProbe:\n            httpGet:\n              path: '
    yield str(t_1((undefined(name='probe_path') if l_0_probe_path is missing else l_0_probe_path)))
    yield '\n              port: "http"\n            initialDelaySeconds: 5\n            periodSeconds: 10\n            timeoutSeconds: 2\n          resources: '
    yield str(t_1((undefined(name='resources') if l_0_resources is missing else l_0_resources)))
    yield '\n          securityContext:\n            allowPrivilegeEscalation: false\n            readOnlyRootFilesystem: true\n            runAsNonRoot: true\n            capabilities:\n              drop: ["ALL"]\n          volumeMounts:\n            - name: "config"\n              mountPath: '
    yield str(t_1((undefined(name='config_mount') if l_0_config_mount is missing else l_0_config_mount)))
    if (undefined(name='config_sub_path') if l_0_config_sub_path is missing else l_0_config_sub_path):
        pass
        yield '\n              subPath: '
        yield str(t_1((undefined(name='config_sub_path') if l_0_config_sub_path is missing else l_0_config_sub_path)))
    yield '\n              readOnly: true'
    for l_1_dir in (undefined(name='writable_dirs') if l_0_writable_dirs is missing else l_0_writable_dirs):
        _loop_vars = {}
        pass
        yield '\n            - name: '
        yield str(t_1(environment.getattr(l_1_dir, 'name')))
        yield '\n              mountPath: '
        yield str(t_1(environment.getattr(l_1_dir, 'path')))
    l_1_dir = missing
    yield '\n      volumes:\n        - name: "config"\n          configMap:\n            name: '
    yield str(t_1((undefined(name='configmap_name') if l_0_configmap_name is missing else l_0_configmap_name)))
    for l_1_dir in (undefined(name='writable_dirs') if l_0_writable_dirs is missing else l_0_writable_dirs):
        _loop_vars = {}
        pass
        yield '\n        - name: '
        yield str(t_1(environment.getattr(l_1_dir, 'name')))
        yield '\n          emptyDir:\n            sizeLimit: "16Mi"'
    l_1_dir = missing
    yield '\n      restartPolicy: "Always"\n'

blocks = {}
debug_info = '1=38&4=41&6=43&9=45&12=47&13=49&23=51&25=54&26=58&29=60&35=63&38=65&39=67&40=69&41=71&42=73&45=75&49=77&55=79&60=81&69=83&70=84&71=87&74=89&75=93&76=95&81=98&82=99&83=103'