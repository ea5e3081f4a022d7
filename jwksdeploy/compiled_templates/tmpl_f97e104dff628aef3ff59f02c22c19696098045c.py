from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = '_helpers.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_metadata = missing
    try:
        t_1 = environment.filters['q']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'q' found.")
    pass
    def macro(l_1_name, l_1_namespace, l_1_labels, l_1_annotations):
        t_2 = []
        if l_1_name is missing:
            l_1_name = undefined("parameter 'name' was not provided", name='name')
        if l_1_namespace is missing:
            l_1_namespace = undefined("parameter 'namespace' was not provided", name='namespace')
        if l_1_labels is missing:
            l_1_labels = undefined("parameter 'labels' was not provided", name='labels')
        if l_1_annotations is missing:
            l_1_annotations = undefined("parameter 'annotations' was not provided", name='annotations')
        pass
        t_2.extend((
            'metadata:\n  name: ',
            str(t_1(l_1_name)),
            '\n  namespace: ',
            str(t_1(l_1_namespace)),
            '\n  labels: ',
            str(t_1(l_1_labels)),
        ))
        if l_1_annotations:
            pass
            t_2.extend((
                '\n  annotations: ',
                str(t_1(l_1_annotations)),
            ))
        return concat(t_2)
    context.exported_vars.add('metadata')
    context.vars['metadata'] = l_0_metadata = Macro(environment, macro, 'metadata', ('name', 'namespace', 'labels', 'annotations'), False, False, False, context.eval_ctx.autoescape)

blocks = {}
debug_info = '3=18&5=31&6=33&7=35&8=37&9=41'