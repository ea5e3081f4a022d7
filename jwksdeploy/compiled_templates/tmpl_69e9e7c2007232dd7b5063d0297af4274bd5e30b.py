from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'configmap.yaml.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_configmap_name = resolve('configmap_name')
    l_0_namespace = resolve('namespace')
    l_0_labels = resolve('labels')
    l_0_annotations = resolve('annotations')
    l_0_jwks_key = resolve('jwks_key')
    l_0_jwks_text = resolve('jwks_text')
    l_0_server_config = resolve('server_config')
    l_0_h = missing
    try:
        t_1 = environment.filters['q']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'q' found.")
    pass
    l_0_h = context.vars['h'] = environment.get_template('_helpers.j2', 'configmap.yaml.j2')._get_default_module(context)
    context.exported_vars.discard('h')
    yield 'apiVersion: v1\nkind: ConfigMap\n'
    yield str(context.call(environment.getattr((undefined(name='h') if l_0_h is missing else l_0_h), 'metadata'), (undefined(name='configmap_name') if l_0_configmap_name is missing else l_0_configmap_name), (undefined(name='namespace') if l_0_namespace is missing else l_0_namespace), (undefined(name='labels') if l_0_labels is missing else l_0_labels), (undefined(name='annotations') if l_0_annotations is missing else l_0_annotations)))
    yield '\ndata:\n  '
    yield str(t_1((undefined(name='jwks_key') if l_0_jwks_key is missing else l_0_jwks_key)))
    yield ': '
    yield str(t_1((undefined(name='jwks_text') if l_0_jwks_text is missing else l_0_jwks_text)))
    for (l_1_key, l_1_value) in context.call(environment.getattr((undefined(name='server_config') if l_0_server_config is missing else l_0_server_config), 'items')):
        _loop_vars = {}
        pass
        yield '\n  '
        yield str(t_1(l_1_key))
        yield ': '
        yield str(t_1(l_1_value))
    l_1_key = l_1_value = missing
    yield '\n'

blocks = {}
debug_info = '1=25&4=28&6=30&7=33&8=37'