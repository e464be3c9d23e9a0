using System.Runtime.InteropServices;
using Google.Protobuf;
using ProGan.Keras.Serving.Onnx.Proto;
using TorchSharp;
using static TorchSharp.torch;

namespace ProGan.Keras.Serving.Onnx;

/// <summary>
/// An ONNX graph under construction: constants become initializers, operators become nodes whose outputs get fresh
/// names, so a model is written as the sequence of calls its forward pass makes.
/// </summary>
internal sealed class OnnxGraph
{
    private int counter;

    public GraphProto Proto { get; } = new();

    private string Fresh(string stem) => $"{stem}_{counter++}";

    /// <summary>A float32 constant, copied from <paramref name="value"/> (any device).</summary>
    public string Constant(string name, Tensor value)
    {
        using var cpu = value.detach().cpu().to_type(ScalarType.Float32).contiguous();
        float[] data = cpu.data<float>().ToArray();
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw_data is little-endian.");
        var tensor = new TensorProto { Name = Fresh(name), DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(data.AsSpan())) };
        tensor.Dims.Add(cpu.shape);
        Proto.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>A float32 constant of the given shape.</summary>
    public string Constant(string name, float[] values, params long[] dims)
    {
        var tensor = new TensorProto { Name = Fresh(name), DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.Add(dims);
        tensor.FloatData.Add(values);
        Proto.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>An int64 constant (shapes).</summary>
    public string Int64s(string name, params long[] values)
    {
        var tensor = new TensorProto { Name = Fresh(name), DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.Add(values);
        Proto.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>Adds a node of operator <paramref name="op"/> and returns its one output's name.</summary>
    public string Node(string op, IEnumerable<string> inputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = Fresh(op) };
        node.Input.Add(inputs);
        node.Output.Add(node.Name + "_out");
        node.Attribute.Add(attributes);
        Proto.Node.Add(node);
        return node.Output[0];
    }

    /// <summary>Renames the output of the last node (to a graph output's name).</summary>
    public void NameLastOutput(string name) => Proto.Node[^1].Output[0] = name;

    /// <summary>A float tensor value with named (dynamic) or fixed dimensions.</summary>
    public static ValueInfoProto Value(string name, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string param ? new TensorShapeProto.Types.Dimension { DimParam = param }
                                            : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d) });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto String(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(values);
        return a;
    }
}
