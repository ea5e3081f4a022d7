from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'poddisruptionbudget.yaml.j2'

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
    l_0_selector = resolve('selector')
    l_0_h = missing
    try:
        t_1 = environment.filters['q']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'q' found.")
    pass
    l_0_h = context.vars['h'] = environment.get_template('_helpers.j2', 'poddisruptionbudget.yaml.j2')._get_default_module(context)
    context.exported_vars.discard('h')
    yield 'apiVersion: policy/v1\nkind: PodDisruptionBudget\n'
    yield str(context.call(environment.getattr((undefined(name='h') if l_0_h is missing else l_0_h), 'metadata'), (undefined(name='name') if l_0_name is missing else l_0_name), (undefined(name='namespace') if l_0_namespace is missing else l_0_namespace), (undefined(name='labels') if l_0_labels is missing else l_0_labels), (undefined(name='annotations') if l_0_annotations is missing else l_0_annotations)))
    yield '\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels: '
    yield str(t_1((undefined(name='selector') if l_0_selector is missing else l_0_selector)))
    yield '\n'

blocks = {}
debug_info = '1=23&4=26&8=28'