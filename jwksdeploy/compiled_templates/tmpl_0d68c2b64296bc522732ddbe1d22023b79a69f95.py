from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'service.yaml.j2'

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
    l_0_service_type = resolve('service_type')
    l_0_selector = resolve('selector')
    l_0_port = resolve('port')
    l_0_node_port = resolve('node_port')
    l_0_h = missing
    try:
        t_1 = environment.filters['q']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'q' found.")
    try:
        t_2 = environment.tests['none']
    except KeyError:
        @internalcode
        def t_2(*unused):
            raise TemplateRuntimeError("No test named 'none' found.")
    pass
    l_0_h = context.vars['h'] = environment.get_template('_helpers.j2', 'service.yaml.j2')._get_default_module(context)
    context.exported_vars.discard('h')
    yield 'apiVersion: v1\nkind: Service\n'
    yield str(context.call(environment.getattr((undefined(name='h') if l_0_h is missing else l_0_h), 'metadata'), (undefined(name='name') if l_0_name is missing else l_0_name), (undefined(name='namespace') if l_0_namespace is missing else l_0_namespace), (undefined(name='labels') if l_0_labels is missing else l_0_labels), (undefined(name='annotations') if l_0_annotations is missing else l_0_annotations)))
    yield '\nspec:\n  type: '
    yield str(t_1((undefined(name='service_type') if l_0_service_type is missing else l_0_service_type)))
    yield '\n  selector: '
    yield str(t_1((undefined(name='selector') if l_0_selector is missing else l_0_selector)))
    yield '\n  ports:\n    - name: "http"\n      protocol: "TCP"\n      port: '
    yield str(t_1((undefined(name='port') if l_0_port is missing else l_0_port)))
    yield '\n      targetPort: "http"'
    if (not t_2((undefined(name='node_port') if l_0_node_port is missing else l_0_node_port))):
        pass
        yield '\n      nodePort: '
        yield str(t_1((undefined(name='node_port') if l_0_node_port is missing else l_0_node_port)))
    yield '\n'

blocks = {}
debug_info = '1=32&4=35&6=37&7=39&11=41&13=43&14=46'