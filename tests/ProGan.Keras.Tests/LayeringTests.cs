using System.Reflection;
using System.Reflection.Emit;
using System.Xml.Linq;
using ProGan.Keras.Backend;

namespace ProGan.Keras.Tests;

/// <summary>
/// The layer package is built bottom-up: <c>IO</c> ← <c>Backend</c> ← <c>Layers</c>, <c>Optimizers</c> ← <c>Models</c>. A
/// namespace may use the ones below it, never one above, so the layers can be read, tested and reused without the
/// models.
/// </summary>
/// <remarks>
/// Both namespaces are in one assembly, so its type references say nothing; the test reads what the compiled code
/// really uses instead: every signature (base type, interfaces, fields, parameters, return and local types) and every
/// type, method and field token in the IL of every method of every type in a namespace (compiler-generated lambdas and
/// state machines included, as they are nested in it), generic arguments, arrays and by-refs unwrapped.
/// </remarks>
public class LayeringTests
{
    private static readonly Assembly Library = typeof(TorchBackend).Assembly;

    /// <summary>What each namespace of the layer package may use of the package besides itself.</summary>
    public static TheoryData<string, string[]> Allowed => new()
    {
        { "ProGan.Keras.IO", [] },
        { "ProGan.Keras.Backend", ["ProGan.Keras.IO"] },
        { "ProGan.Keras.Layers", ["ProGan.Keras.Backend"] },
        { "ProGan.Keras.Optimizers", ["ProGan.Keras.Backend"] },
    };

    [Theory]
    [MemberData(nameof(Allowed))]
    public void A_namespace_uses_only_the_namespaces_below_it(string ns, string[] below)
    {
        var types = Library.GetTypes().Where(t => t.Namespace == ns).ToArray();
        Assert.NotEmpty(types);
        var offending = types
            .SelectMany(t => Uses(t).Select(used => (from: t, used)))
            .Where(u => IsPackage(u.used) && u.used.Namespace != ns && !below.Contains(u.used.Namespace))
            .Select(u => $"{u.from.FullName} uses {u.used.FullName}")
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToArray();
        Assert.True(offending.Length == 0, $"{ns} may use only {(below.Length == 0 ? "itself" : string.Join(", ", below))} of ProGan.Keras:\n" + string.Join("\n", offending));
    }

    /// <summary>Whether <paramref name="type"/> is one of the package's own (not <c>&lt;PrivateImplementationDetails&gt;</c>,
    /// the compiler's global holder of array initialisers).</summary>
    private static bool IsPackage(Type type) =>
        type.Assembly == Library && type.Namespace is { } n && (n == "ProGan.Keras" || n.StartsWith("ProGan.Keras.", StringComparison.Ordinal));

    /// <summary>The layers' documentation does not send the reader up to the models either.</summary>
    [Fact]
    public void The_layers_documentation_links_to_nothing_above_Backend()
    {
        string xml = Path.ChangeExtension(Library.Location, ".xml");
        Assert.True(File.Exists(xml), $"the documentation file {xml} is missing (GenerateDocumentationFile)");
        var offending = XDocument.Load(xml).Descendants("member")
            .Where(m => ((string?)m.Attribute("name"))?[2..].StartsWith("ProGan.Keras.Layers.", StringComparison.Ordinal) == true)
            .SelectMany(m => m.Descendants().Select(e => (member: (string)m.Attribute("name")!, cref: (string?)e.Attribute("cref"))))
            .Where(c => c.cref is not null && c.cref.Length > 2 && c.cref[2..].StartsWith("ProGan.Keras.", StringComparison.Ordinal)
                        && !c.cref[2..].StartsWith("ProGan.Keras.Layers.", StringComparison.Ordinal)
                        && !c.cref[2..].StartsWith("ProGan.Keras.Backend.", StringComparison.Ordinal))
            .Select(c => $"{c.member} links to {c.cref}")
            .ToArray();
        Assert.True(offending.Length == 0, "Layer documentation may link only to Layers and Backend:\n" + string.Join("\n", offending));
    }

    /// <summary>Every type <paramref name="type"/>'s compiled code refers to.</summary>
    private static IEnumerable<Type> Uses(Type type)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var used = new List<Type>();
        if (type.BaseType is not null) used.Add(type.BaseType);
        used.AddRange(type.GetInterfaces());
        used.AddRange(type.GetCustomAttributesData().Select(a => a.AttributeType));
        foreach (var field in type.GetFields(all)) used.Add(field.FieldType);
        foreach (var method in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
        {
            if (method is MethodInfo m) used.Add(m.ReturnType);
            used.AddRange(method.GetParameters().Select(p => p.ParameterType));
            var body = method.GetMethodBody();
            if (body is null) continue;
            used.AddRange(body.LocalVariables.Select(l => l.LocalType));
            used.AddRange(Tokens(method, body.GetILAsByteArray()!));
        }
        return used.SelectMany(Unwrap);
    }

    /// <summary>The declaring types of the members, and the types, that <paramref name="il"/>'s tokens name.</summary>
    private static IEnumerable<Type> Tokens(MethodBase method, byte[] il)
    {
        var module = method.Module;
        var typeArguments = method.DeclaringType!.IsGenericType ? method.DeclaringType.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (int i = 0; i < il.Length;)
        {
            var op = il[i] == 0xFE ? TwoByte[il[i + 1]] : OneByte[il[i]];
            i += op.Size;
            switch (op.OperandType)
            {
                case OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok:
                    var member = module.ResolveMember(BitConverter.ToInt32(il, i), typeArguments, methodArguments)!;
                    if (member is Type t) yield return t;
                    else
                    {
                        yield return member.DeclaringType!;
                        if (member is MethodInfo called)
                        {
                            yield return called.ReturnType;
                            foreach (var a in called.IsGenericMethod ? called.GetGenericArguments() : []) yield return a;
                        }
                        if (member is FieldInfo f) yield return f.FieldType;
                    }
                    break;
            }
            i += OperandSize(op, il, i);
        }
    }

    private static int OperandSize(OpCode op, byte[] il, int at) => op.OperandType switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, at),
        _ => 4,
    };

    private static readonly OpCode[] OneByte = new OpCode[256], TwoByte = new OpCode[256];

    static LayeringTests()
    {
        foreach (var field in typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static))
        {
            var op = (OpCode)field.GetValue(null)!;
            ushort value = (ushort)op.Value;
            if (op.Size == 1) OneByte[value] = op;
            else TwoByte[value & 0xFF] = op;
        }
    }

    /// <summary><paramref name="type"/> and what it is made of: element types, generic arguments.</summary>
    private static IEnumerable<Type> Unwrap(Type type)
    {
        if (type.HasElementType) return Unwrap(type.GetElementType()!);
        if (type.IsGenericParameter) return [];
        if (type.IsConstructedGenericType)
            return Unwrap(type.GetGenericTypeDefinition()).Concat(type.GetGenericArguments().SelectMany(Unwrap));
        return [type];
    }
}
