module ProGan.Training.Display
